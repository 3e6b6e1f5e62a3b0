/**
 * Defaults, choices and names that the command line shows in its help, in a module that imports
 * nothing, so that `regfs --help` and start-up need not load the operations that use them.
 * Their home modules re-export them.
 */

/** Operations in flight at once unless `jobs` says otherwise. */
export const DEFAULT_JOBS = 16;

/** How blob data is placed. */
export type LinkMode = 'auto' | 'hardlink' | 'copy';
export const LINK_MODES: readonly LinkMode[] = ['auto', 'hardlink', 'copy'];

/** The registry the storage is checked for: distribution 2.x (2.8.2), or v3. */
export type VerifyTarget = 'v2' | 'v3';
export const VERIFY_TARGETS: readonly VerifyTarget[] = ['v2', 'v3'];

/** The digest file written beside the images: `<digest> <ref>` a line. */
export const DIGEST_FILE = 'digests.txt';
