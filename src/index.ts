/** The regfs library: everything the CLI does, as functions that never print. */
export { RegfsError, isRegfsError, type RegfsErrorCode, type ListPosition } from './errors.js';
export { parseDigest, isDigest, digestOf, digestFile, digestHex, digestAlgorithm, type Digest, type DigestAlgorithm } from './digest.js';
export {
  parseRepoName,
  parseTag,
  parseImageRef,
  formatImageRef,
  isRepoName,
  isTag,
  looksLikeDomain,
  type RepoName,
  type Tag,
  type ImageRef,
} from './reference.js';
export { parseImageList, readImageList, mergeDuplicates, type ListEntry, type ParsedList } from './image-list.js';
export {
  MediaTypes,
  parseManifest,
  parseManifestContent,
  referencedBlobs,
  isIndexKind,
  formatPlatform,
  type Manifest,
  type ManifestKind,
  type Descriptor,
  type Platform,
} from './manifest.js';
export * as layout from './registry/layout.js';
export { readLink, writeLink, parseLinkContent } from './registry/link-file.js';
export { RegistryReader, findStorageRoot, holdsRepository, compareRepoNames, type BlobInfo } from './registry/read.js';
export {
  writePlan,
  emptyPlan,
  repoWrites,
  countPlanFiles,
  type WritePlan,
  type RepoWrites,
  type BlobSource,
  type WriteStats,
} from './registry/write.js';
export type { Progress, ProgressPhase, OnProgress } from './progress.js';
export { createLinker, LINK_MODES, type LinkMode, type Linker, type LinkFs, type PlaceOutcome } from './fs/link.js';
export { resolveImages, type ResolvedImage, type Resolution } from './ops/resolve.js';
export { planWrites, type ImageContent } from './ops/common.js';
export { extract, type ExtractOptions, type ExtractResult, type ImageSummary, type ReferrersResult } from './ops/extract.js';
export { findReferrers, fallbackTag, artifactTypeOf, type ReferrerInfo, type ReferrerClosure, type RewrittenIndex } from './ops/referrers.js';
export { parsePlatform } from './ops/platform.js';
export { toOci, type ToOciOptions, type ToOciResult, type ToOciStats } from './ops/to-oci.js';
export { bundle, parseSize, type BundleOptions, type BundlePlan, type BundleResult } from './ops/bundle.js';
export { readInventory, type Inventory } from './inventory/read.js';
export { toDir, DIGEST_FILE, type ToDirOptions, type ToDirResult, type ExportedImage, type ToDirStats } from './ops/to-dir.js';
export { fromDir, type FromDirOptions, type FromDirResult } from './ops/from-dir.js';
export { fromOci, type FromOciOptions, type FromOciResult } from './ops/from-oci.js';
export { apply, type ApplyOptions, type ApplyResult, type BundleSummary } from './ops/apply.js';
export { schema1Payload } from './schema1.js';
export * as dirLayout from './dir/layout.js';
export { imageDirName, parseImageDirName, encodePortable, decodePortable } from './dir/names.js';
export { readDirManifest, findDirBlob, type DirBlob } from './dir/read.js';
export { listImages, compileGlob, parseListPattern, type Glob, type ListOptions, type ListResult, type ListPattern, type RepoListing, type TagListing } from './ops/ls.js';
export {
  inspectImage,
  type InspectOptions,
  type InspectResult,
  type ImageConfigSummary,
  type InspectedBlob,
  type InspectedManifest,
} from './ops/inspect.js';
export { verify, type VerifyOptions, type VerifyResult, type Finding } from './ops/verify.js';
export { gc, type GcOptions, type GcResult } from './ops/gc.js';
export { rm, type RmOptions, type RmResult } from './ops/rm.js';
export { inventory, type InventoryOptions, type InventoryResult } from './ops/inventory.js';
export { InventoryWriter, INVENTORY_HEADER, type InventoryCounts, type InventorySink } from './inventory/write.js';
export { scanStorage, type StorageScan, type RepoScan, type BlobEntry, type LinkEntry, type TagEntry } from './registry/scan.js';
export { acquireLock, withLock, LOCK_FILE, type Lock, type LockOwner } from './fs/lock.js';
