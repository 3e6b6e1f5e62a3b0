/**
 * JSON read the way Go's encoding/json (go1.19, which docker-registry 2.8.2 and skopeo 1.9.3
 * are built with) reads it into a struct, so that regfs understands a stored manifest exactly
 * as the registry that serves it and the tools that pull it do:
 *
 * - the input must be one JSON value with white space around it, nothing else: a byte order
 *   mark or trailing bytes make it invalid; nesting deeper than 10000 is invalid;
 * - object keys match struct fields case-insensitively (`"Layers"` is `layers`; Go's folding
 *   also matches U+017F to `s` and U+212A to `k`), and keys that match no field are skipped;
 * - a key given twice is decoded twice, in order, into the same field: for a string or a
 *   number the last wins, an object is decoded into the struct the first one filled (fields
 *   the second lacks keep their values), an array element by element into the slice the
 *   first one filled;
 * - `null` leaves a string, number or struct as it was and empties a slice, map or pointer;
 * - a value of the wrong type for its field (a string for `size`, `1.0` or `1e3` for an
 *   integer) is an error, and so the whole document is refused, as the registry refuses it.
 *
 * The parser is iterative, so no input can exhaust the stack.
 */

/** A parsed JSON value; objects keep every key in order (duplicates too), numbers their text. */
export type JsonValue =
  | { t: 'object'; entries: Array<[string, JsonValue]> }
  | { t: 'array'; items: JsonValue[] }
  | { t: 'string'; v: string }
  | { t: 'number'; raw: string }
  | { t: 'bool'; v: boolean }
  | { t: 'null' };

/** Go's maxNestingDepth in encoding/json's scanner. */
const MAX_DEPTH = 10000;

/** A JSON syntax error, or a value Go would not store in its field. */
export class GoJsonError extends Error {}

/** A backslash or a control character: a string holding one needs the slow path. */
const SPECIAL_IN_STRING = /[\\\x00-\x1f]/;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** Parse a document as Go's scanner accepts it (see the module comment). */
export function parseJson(text: string): JsonValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new GoJsonError(`${what} at offset ${i}`);
  };
  const skipWs = (): void => {
    for (let c = text.charCodeAt(i); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = text.charCodeAt(++i));
  };
  const readString = (): string => {
    // text[i] is the opening quote. Most strings hold no escape: one native search.
    const close = text.indexOf('"', i + 1);
    if (close >= 0) {
      const plain = text.slice(i + 1, close);
      if (!SPECIAL_IN_STRING.test(plain)) {
        i = close + 1;
        return plain;
      }
    }
    i++;
    let out = '';
    let start = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      const e = text[i + 1];
      if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e];
        i += 2;
      } else if (e === 'u') {
        const unit = (at: number): number => (/^[0-9a-fA-F]{4}$/.test(text.slice(at, at + 4)) ? parseInt(text.slice(at, at + 4), 16) : fail('bad \\u escape'));
        const u = unit(i + 2);
        i += 6;
        if (u >= 0xd800 && u < 0xdc00 && text.startsWith('\\u', i)) {
          const lo = /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6)) ? parseInt(text.slice(i + 2, i + 6), 16) : -1;
          if (lo >= 0xdc00 && lo < 0xe000) {
            out += String.fromCharCode(u, lo);
            i += 6;
          } else out += '\ufffd';
        } else out += u >= 0xd800 && u < 0xe000 ? '\ufffd' : String.fromCharCode(u);
      } else fail('bad escape in string');
      start = i;
    }
  };
  /** Containers being filled, innermost last; a pending object key sits with its object. */
  const stack: Array<{ v: Extract<JsonValue, { t: 'object' }>; key: string } | { v: Extract<JsonValue, { t: 'array' }> }> = [];
  let root: JsonValue | undefined;
  const place = (v: JsonValue): void => {
    const top = stack.at(-1);
    if (top === undefined) root = v;
    else if (top.v.t === 'array') top.v.items.push(v);
    else top.v.entries.push([(top as { key: string }).key, v]);
  };
  // After a value: ',' or the close of the container, or the end.
  const afterValue = (): boolean => {
    for (;;) {
      skipWs();
      const top = stack.at(-1);
      if (top === undefined) return false;
      const c = text[i];
      if (c === ',') {
        i++;
        skipWs();
        if (top.v.t === 'object') {
          if (text[i] !== '"') fail('want an object key');
          (top as { key: string }).key = readString();
          skipWs();
          if (text[i] !== ':') fail("want ':' after an object key");
          i++;
        }
        return true;
      }
      if ((c === '}' && top.v.t === 'object') || (c === ']' && top.v.t === 'array')) {
        i++;
        stack.pop();
        continue;
      }
      fail(`unexpected ${c === undefined ? 'end of input' : JSON.stringify(c)} in ${top.v.t}`);
    }
  };
  for (;;) {
    skipWs();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (stack.length >= MAX_DEPTH) fail('nesting deeper than 10000');
      i++;
      skipWs();
      if (c === '{') {
        const v: JsonValue = { t: 'object', entries: [] };
        place(v);
        if (text[i] === '}') {
          i++;
          if (!afterValue()) break;
          continue;
        }
        if (text[i] !== '"') fail('want an object key');
        const key = readString();
        skipWs();
        if (text[i] !== ':') fail("want ':' after an object key");
        i++;
        stack.push({ v, key });
      } else {
        const v: JsonValue = { t: 'array', items: [] };
        place(v);
        if (text[i] === ']') {
          i++;
          if (!afterValue()) break;
          continue;
        }
        stack.push({ v });
      }
      continue;
    }
    if (c === '"') place({ t: 'string', v: readString() });
    else if (text.startsWith('true', i)) {
      place({ t: 'bool', v: true });
      i += 4;
    } else if (text.startsWith('false', i)) {
      place({ t: 'bool', v: false });
      i += 5;
    } else if (text.startsWith('null', i)) {
      place({ t: 'null' });
      i += 4;
    } else {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (m === null) fail(c === undefined ? 'unexpected end of input' : `invalid character ${JSON.stringify(c)}`);
      place({ t: 'number', raw: m![0] });
      i += m![0].length;
    }
    if (!afterValue()) break;
  }
  skipWs();
  if (i < text.length) fail(`invalid character ${JSON.stringify(text[i])} after the top-level value`);
  return root!;
}

// ---------------------------------------------------------------------------------------------
// Decoding into Go types
// ---------------------------------------------------------------------------------------------

/** The Go types the registry's manifest structs are made of. */
export type GoType =
  | { k: 'string' }
  | { k: 'int' }
  | { k: 'struct'; fields: Record<string, GoType> }
  | { k: 'slice'; elem: GoType }
  | { k: 'ptr'; elem: GoType }
  | { k: 'map'; elem: GoType };

/** A Go slice: its backing array (its length is the capacity; undefined is a zero element) and its length. */
export interface GoSlice {
  backing: unknown[];
  len: number;
}

const STRUCT_FIELDS = new WeakMap<GoType, Array<[string, GoType]>>();

/** Go's zero value for a type: '', 0n, a struct of zeros, or null (nil) for a slice, pointer or map. */
function zero(type: GoType): unknown {
  switch (type.k) {
    case 'string':
      return '';
    case 'int':
      return 0n;
    case 'struct': {
      let fields = STRUCT_FIELDS.get(type);
      if (fields === undefined) {
        fields = Object.entries(type.fields);
        STRUCT_FIELDS.set(type, fields);
      }
      const out: Record<string, unknown> = {};
      for (const [name, t] of fields) out[name] = zero(t);
      return out;
    }
    default:
      return null;
  }
}

/** The elements of a decoded slice (nil is empty). */
export function sliceItems(s: unknown): unknown[] {
  const v = s as GoSlice | null;
  return v === null ? [] : v.backing.slice(0, v.len);
}

const FOLDED = new WeakMap<GoType, Map<string, string>>();

/** A struct's field names by their folded form (computed once per type). */
function foldedFields(type: Extract<GoType, { k: 'struct' }>): Map<string, string> {
  let m = FOLDED.get(type);
  if (m === undefined) {
    m = new Map(Object.keys(type.fields).map((name) => [foldKey(name), name]));
    FOLDED.set(type, m);
  }
  return m;
}

/**
 * Case folding as Go's encoding/json matches object keys to (ASCII) field names: ASCII case,
 * and U+212A (Kelvin, which toLowerCase makes `k`) and U+017F (long s) as `k` and `s`. Other
 * non-ASCII characters fold to non-ASCII ones, which match no field name either way.
 */
export function foldKey(s: string): string {
  const lower = s.toLowerCase();
  return lower.includes('\u017f') ? lower.replaceAll('\u017f', 's') : lower;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Decode a document into a fresh Go value of `type`, as encoding/json's Unmarshal does; the
 * value, and the type errors found (Go reports the first and fails the whole Unmarshal, but
 * decodes the rest first, so merging is the same either way).
 */
export function goDecode(doc: JsonValue, type: GoType): { value: unknown; errors: string[] } {
  const errors: string[] = [];
  // The path to the value being decoded, for messages: built only when a type is wrong.
  const path: Array<string | number> = [];
  const where = (): string => (path.length === 0 ? 'the document' : path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join(''));
  const wrongType = (v: JsonValue, type: GoType, cur: unknown): unknown => {
    errors.push(`${where()}: ${describe(v)} where Go wants ${type.k}`);
    return cur;
  };
  const dec = (v: JsonValue, type: GoType, cur: unknown): unknown => {
    if (v.t === 'null') return type.k === 'slice' || type.k === 'ptr' || type.k === 'map' ? null : cur;
    switch (type.k) {
      case 'string':
        return v.t === 'string' ? v.v : wrongType(v, type, cur);
      case 'int': {
        if (v.t !== 'number' || !INTEGER.test(v.raw)) return wrongType(v, type, cur);
        const n = BigInt(v.raw);
        return n < INT64_MIN || n > INT64_MAX ? wrongType(v, type, cur) : n;
      }
      case 'ptr':
        return dec(v, type.elem, cur ?? zero(type.elem));
      case 'struct': {
        if (v.t !== 'object') return wrongType(v, type, cur);
        // Values are owned by the document being decoded, so a struct is filled in place.
        const out = cur as Record<string, unknown>;
        const byFold = foldedFields(type);
        for (let i = 0; i < v.entries.length; i++) {
          const [key, value] = v.entries[i]!;
          const field = type.fields[key];
          const name = field !== undefined && Object.hasOwn(type.fields, key) ? key : byFold.get(foldKey(key));
          if (name === undefined) continue;
          path.push(name);
          out[name] = dec(value, type.fields[name]!, out[name]);
          path.pop();
        }
        return out;
      }
      case 'map': {
        if (v.t !== 'object') return wrongType(v, type, cur);
        const out = (cur as Map<string, unknown> | null) ?? new Map<string, unknown>();
        // Each value is decoded into a fresh element: a duplicate key replaces, never merges.
        for (const [key, value] of v.entries) {
          path.push(JSON.stringify(key));
          out.set(key, dec(value, type.elem, zero(type.elem)));
          path.pop();
        }
        return out;
      }
      case 'slice': {
        if (v.t !== 'array') return wrongType(v, type, cur);
        if (v.items.length === 0) return { backing: [], len: 0 };
        // Go decodes element i into the slice's element i while the backing array has room,
        // including elements an earlier key of the same name left past the length; it grows
        // the array by half (at least to 4), copying only the elements within the length.
        const s = (cur as GoSlice | null) ?? { backing: [], len: 0 };
        let backing = s.backing;
        let len = s.len;
        for (let i = 0; i < v.items.length; i++) {
          if (i >= backing.length) {
            const grown: unknown[] = new Array(Math.max(4, backing.length + Math.floor(backing.length / 2))).fill(undefined);
            for (let j = 0; j < len; j++) grown[j] = backing[j];
            backing = grown;
          }
          if (i >= len) len = i + 1;
          path.push(i);
          backing[i] = dec(v.items[i]!, type.elem, backing[i] === undefined ? zero(type.elem) : backing[i]);
          path.pop();
        }
        return { backing, len: v.items.length };
      }
    }
  };
  return { value: dec(doc, type, zero(type)), errors };
}

const INTEGER = /^-?[0-9]+$/;

function describe(v: JsonValue): string {
  return v.t === 'number' ? `number ${v.raw}` : v.t;
}
