/**
 * Repository names, tags and image references, validated by the grammar of
 * distribution/reference as docker-registry 2.8 applies it. `parseRepoName` and `parseTag`
 * are the only ways to obtain a `RepoName` or a `Tag`, so a name with `..`, an absolute path
 * or upper case in a path component never reaches a path join. Upper case is allowed in the
 * first of several components, which the grammar reads as a domain (`Team/app`).
 */
import { quote, RegfsError } from './errors.js';
import { parseDigest, type Digest } from './digest.js';

/** A repository name such as `library/alpine` or `host.example.com:5000/team/app`. */
export type RepoName = string & { readonly __brand: 'RepoName' };
/** A tag such as `latest` or `v1.2.3-rc.1`. */
export type Tag = string & { readonly __brand: 'Tag' };

/** The whole name may not be longer than this (v2.8 checks the whole name). */
export const NAME_MAX_LENGTH = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
// A domain component may hold upper case; the domain may end in :port.
const DOMAIN = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/** True if the first component of a name is a registry host (`host.example.com`, `host:5000`, `localhost`). */
export function looksLikeDomain(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

/**
 * NAME_INVALID if docker-registry cannot store the repository: its name starts with a
 * registry host with a :port (`localhost:5000/app`). The grammar allows the name, but a
 * storage path component may hold only `[A-Za-z0-9._-]`, so 2.8's storage driver refuses its
 * path and the registry answers 500 for every request on it. `path`: where it was found.
 */
export function checkStorableName(repo: string, path?: string): void {
  if (isStorableName(repo)) return;
  const host = repo.split('/')[0]!;
  throw new RegfsError(
    'NAME_INVALID',
    `repository ${repo} starts with the registry host ${host}; docker-registry 2.8 cannot store or serve a name with a :port (it answers 500); --strip-registry drops the host`,
    path === undefined ? {} : { path },
  );
}

/** True if checkStorableName passes. */
export function isStorableName(repo: string): boolean {
  return !repo.includes(':');
}

/** Validate a repository name. */
export function parseRepoName(s: string): RepoName {
  const fail = (why: string): never => {
    throw new RegfsError('NAME_INVALID', `invalid repository name ${quote(s)}: ${why}`);
  };
  if (s.length === 0) fail('empty');
  if (s.length > NAME_MAX_LENGTH) fail(`longer than ${NAME_MAX_LENGTH} characters`);
  const parts = s.split('/');
  // The grammar is (domain/)?path(/path)*, and a domain component may hold upper case and
  // need not hold a dot: the first of several components is a domain whenever it fits the
  // domain grammar (`Team/app`, which 2.8 stores and serves), and a path component when it
  // fits that one (my_host.example is not a valid host, but it is a valid path component).
  const first = parts.length > 1 && !PATH_COMPONENT.test(parts[0]!) && DOMAIN.test(parts[0]!) ? 1 : 0;
  if (first === 0 && parts.length > 1 && !PATH_COMPONENT.test(parts[0]!) && looksLikeDomain(parts[0]!)) fail(`bad registry host ${quote(parts[0]!)}`);
  for (let i = first; i < parts.length; i++) {
    const p = parts[i]!;
    if (!PATH_COMPONENT.test(p)) {
      fail(
        p === ''
          ? 'empty path component'
          : `bad path component ${quote(p)} (lower-case letters and digits, separated by ".", "_", "__" or "-")`,
      );
    }
  }
  return s as RepoName;
}

/** Validate a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. */
export function parseTag(s: string): Tag {
  if (!TAG.test(s)) {
    throw new RegfsError(
      'TAG_INVALID',
      `invalid tag ${quote(s)}: want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`,
    );
  }
  return s as Tag;
}

/** True if `s` is a valid tag. */
export function isTag(s: string): s is Tag {
  return TAG.test(s);
}

/** True if `s` is a valid repository name. */
export function isRepoName(s: string): s is RepoName {
  try {
    parseRepoName(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * An image as a list line names it: a repository, optionally a tag, optionally a digest.
 * Neither tag nor digest means every tag of the repository.
 */
export interface ImageRef {
  repo: RepoName;
  tag?: Tag | undefined;
  digest?: Digest | undefined;
}

export interface ParseRefOptions {
  /** Drop a leading registry host (`host.example.com/`, `host:5000/`, `localhost/`). */
  stripRegistry?: boolean;
}

/** Parse `repo`, `repo:tag`, `repo@sha256:<hex>` or `repo:tag@sha256:<hex>`. */
export function parseImageRef(s: string, opts: ParseRefOptions = {}): ImageRef {
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  let tag: Tag | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = parseTag(rest.slice(colon + 1));
    rest = rest.slice(0, colon);
  }
  if (opts.stripRegistry === true) {
    const slash = rest.indexOf('/');
    if (slash > 0 && looksLikeDomain(rest.slice(0, slash))) rest = rest.slice(slash + 1);
  }
  return { repo: parseRepoName(rest), tag, digest };
}

/** Format a reference the way it was written: `repo[:tag][@digest]`. */
export function formatImageRef(ref: ImageRef): string {
  return `${ref.repo}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}
