/** Choosing one platform's image from an index (`--platform`), for the commands that export. */
import { quote, RegfsError } from '../errors.js';
import type { Digest } from '../digest.js';
import { formatPlatform, isIndexKind, type Manifest, type Platform } from '../manifest.js';
import type { ResolvedImage } from './resolve.js';

/** `os/arch[/variant]` */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/i.test(p))) {
    throw new RegfsError('USAGE', `--platform ${quote(s)}: want os/architecture[/variant], such as linux/arm64 or linux/arm/v7`);
  }
  return { os: parts[0]!, architecture: parts[1]!, variant: parts[2] };
}

/**
 * The image to export for `platform`: an index's first image manifest for it (the index's
 * own children first, then nested indexes), alone; without a platform, or for an image
 * manifest, the image whole. PLATFORM_UNKNOWN names the platforms the index has.
 */
export function selectPlatform(img: ResolvedImage, platform: Platform | undefined): { top: Manifest; manifests: Manifest[] } {
  const top = img.manifest;
  if (platform === undefined || !isIndexKind(top.kind)) return { top, manifests: img.manifests };
  const child = findPlatform(img, top, platform);
  if (child === undefined) {
    const have = img.manifests.flatMap((m) => m.manifests.flatMap((c) => (c.platform === undefined ? [] : [formatPlatform(c.platform)])));
    throw new RegfsError('PLATFORM_UNKNOWN', `${img.repo}: index ${top.digest} has no ${formatPlatform(platform)} image; it has ${have.join(', ') || 'no platforms'}`, {
      digest: top.digest,
    });
  }
  return { top: child, manifests: [child] };
}

/**
 * The first image manifest for the platform, depth first through nested indexes, in index
 * order. An explicit stack of child lists, not recursion: nesting is bounded by the resolver
 * (MAX_INDEX_DEPTH), and the walk needs no JS stack for it.
 */
function findPlatform(img: ResolvedImage, index: Manifest, want: Platform): Manifest | undefined {
  const byDigest = new Map(img.manifests.map((m) => [m.digest, m]));
  const seen = new Set<Digest>([index.digest]);
  const stack: Array<{ children: Manifest['manifests']; next: number }> = [{ children: index.manifests, next: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next >= top.children.length) {
      stack.pop();
      continue;
    }
    const c = top.children[top.next++]!;
    const m = byDigest.get(c.digest);
    if (m === undefined) continue;
    if (isIndexKind(m.kind)) {
      // A shared nested index was searched the first time it was met.
      if (!seen.has(m.digest)) stack.push({ children: m.manifests, next: 0 });
      seen.add(m.digest);
    } else if (c.platform !== undefined && c.platform.os === want.os && c.platform.architecture === want.architecture && (want.variant === undefined || c.platform.variant === want.variant)) {
      return m;
    }
  }
  return undefined;
}

