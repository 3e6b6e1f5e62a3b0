/**
 * Signed schema1 manifests (`application/vnd.docker.distribution.manifest.v1+prettyjws`) are
 * stored by the registry as their canonical payload: the JWS payload without the
 * `signatures` block, as libtrust reconstructs it. Each signature's protected header holds
 * `formatLength` (how many bytes of the document precede the signatures) and `formatTail`
 * (base64url of the bytes that close the payload), so the payload is
 * `raw[0:formatLength] + formatTail`. Its sha256 is the manifest's digest (storage-formats
 * §1A.3, §1D.3), which `skopeo manifest-digest` also reports.
 */
import { RegfsError } from './errors.js';

/** The payload a signed schema1 manifest is stored and addressed as. */
export function schema1Payload(raw: Buffer, where: string): Buffer {
  const invalid = (why: string): RegfsError =>
    new RegfsError('MANIFEST_INVALID', `signed schema1 manifest "${where}" ${why}`, { path: where });
  let doc: { signatures?: unknown };
  try {
    doc = JSON.parse(raw.toString('utf8')) as { signatures?: unknown };
  } catch {
    throw invalid('is not JSON');
  }
  const sigs = doc.signatures;
  if (!Array.isArray(sigs) || sigs.length === 0) throw invalid('has no signatures');
  let format: { length: number; tail: Buffer } | undefined;
  for (const sig of sigs as unknown[]) {
    const prot = typeof sig === 'object' && sig !== null ? (sig as { protected?: unknown }).protected : undefined;
    if (typeof prot !== 'string') throw invalid('has a signature without a protected header');
    let header: { formatLength?: unknown; formatTail?: unknown };
    try {
      header = JSON.parse(Buffer.from(prot, 'base64url').toString('utf8')) as typeof header;
    } catch {
      throw invalid('has a protected header that is not base64url JSON');
    }
    const { formatLength, formatTail } = header;
    if (typeof formatLength !== 'number' || !Number.isSafeInteger(formatLength) || formatLength < 0 || formatLength > raw.length || typeof formatTail !== 'string') {
      throw invalid('has a protected header without a valid formatLength and formatTail');
    }
    const tail = Buffer.from(formatTail, 'base64url');
    if (format === undefined) format = { length: formatLength, tail };
    else if (format.length !== formatLength || !format.tail.equals(tail)) throw invalid('has signatures that disagree on the payload');
  }
  return Buffer.concat([raw.subarray(0, format!.length), format!.tail]);
}
