#!/usr/bin/env python3
"""The plain script an extract is measured against: `plain-extract.py LIST SRC OUT`.

A single-threaded script that makes the same output as `regfs extract` of a clean store, the
way a careful engineer would write it without regfs: each tag's link read, its revision link
checked, each manifest read, hashed against its digest and parsed (an index's children too),
each config's and layer's `_layers` link checked and its data stat'ed; then every blob's data
hard-linked, every `_layers` and revision link written by temp file and rename, and every tag
last. It knows no damage (no repair, no symbolic links, no locks, no messages): it is the
floor of a correct extract in a plain script, not a tool. Prints {"seconds": ...} of its work.
"""
import hashlib
import json
import os
import sys
import time

V2 = ('docker', 'registry', 'v2')
INDEX_TYPES = ('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json')


def read_link(path):
    with open(path, 'rb') as f:
        return f.read().decode('ascii')


def blob_data(v2, digest):
    alg, hex_ = digest.split(':', 1)
    return os.path.join(v2, 'blobs', alg, hex_[:2], hex_, 'data')


def link_path(v2, repo, kind, digest):
    alg, hex_ = digest.split(':', 1)
    return os.path.join(v2, 'repositories', repo, kind, alg, hex_, 'link')


def main():
    started = time.perf_counter()
    list_file, src, out = sys.argv[1:4]
    sv2 = os.path.join(src, *V2)
    ov2 = os.path.join(out, *V2)
    blobs = {}
    links = []
    tags = []
    with open(list_file) as f:
        refs = [line.strip() for line in f if line.strip()]
    for ref in refs:
        repo, tag = ref.rsplit(':', 1)
        top = read_link(os.path.join(sv2, 'repositories', repo, '_manifests', 'tags', tag, 'current', 'link'))
        work = [top]
        while work:
            d = work.pop()
            if read_link(link_path(sv2, repo, '_manifests/revisions', d)) != d:
                raise SystemExit(f'{ref}: revision link of {d} is wrong')
            path = blob_data(sv2, d)
            with open(path, 'rb') as f:
                raw = f.read()
            if 'sha256:' + hashlib.sha256(raw).hexdigest() != d:
                raise SystemExit(f'{ref}: manifest {d} does not match its digest')
            m = json.loads(raw)
            blobs[d] = path
            links.append(link_path(ov2, repo, '_manifests/revisions', d) + '\0' + d)
            if m.get('mediaType') in INDEX_TYPES:
                work.extend(c['digest'] for c in m['manifests'])
                continue
            for desc in [m['config'], *m['layers']]:
                b = desc['digest']
                if read_link(link_path(sv2, repo, '_layers', b)) != b:
                    raise SystemExit(f'{ref}: _layers link of {b} is wrong')
                bpath = blob_data(sv2, b)
                if os.stat(bpath).st_size != desc['size']:
                    raise SystemExit(f'{ref}: blob {b} has the wrong size')
                blobs[b] = bpath
                links.append(link_path(ov2, repo, '_layers', b) + '\0' + b)
        tags.append((repo, tag, top))

    def write(path, content):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            f.write(content)
        os.rename(tmp, path)

    for d, path in blobs.items():
        dest = blob_data(ov2, d)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            os.link(path, dest)
        except FileExistsError:
            pass
    for entry in dict.fromkeys(links):
        path, d = entry.split('\0')
        write(path, d)
    for repo, tag, d in tags:
        base = os.path.join(ov2, 'repositories', repo, '_manifests', 'tags', tag)
        write(os.path.join(base, 'index', *d.split(':', 1), 'link'), d)
        write(os.path.join(base, 'current', 'link'), d)
    print(json.dumps({'seconds': time.perf_counter() - started}))


main()
