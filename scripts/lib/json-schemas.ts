/**
 * The JSON Schema files of `--json` output (schemas/), compiled once with ajv: the tests and
 * the differential harness check every document regfs prints against them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

export const SCHEMA_DIR = fileURLToPath(new URL('../../schemas/', import.meta.url));

let compiled: Map<string, ValidateFunction> | undefined;

/** The validator of each command's document, by command name. */
function validators(): Map<string, ValidateFunction> {
  if (compiled !== undefined) return compiled;
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  const files = readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.schema.json'));
  for (const f of files) ajv.addSchema(JSON.parse(readFileSync(join(SCHEMA_DIR, f), 'utf8')) as object);
  const all = new Map<string, ValidateFunction>();
  for (const f of files) {
    if (f !== 'common.schema.json') all.set(f.replace(/\.schema\.json$/, ''), ajv.getSchema(f)!);
  }
  compiled = all;
  return all;
}

/** The commands that have a schema. */
export function schemaCommands(): string[] {
  return [...validators().keys()].sort();
}

/**
 * Check `stdout` is exactly one JSON document of `command`'s schema whose exit code is
 * `exitCode`; returns it, or throws naming every violation.
 */
export function checkJsonDocument(command: string, stdout: string, exitCode: number): Record<string, unknown> {
  const validate = validators().get(command);
  if (validate === undefined) throw new Error(`no JSON Schema for ${command}`);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(stdout) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`regfs ${command} --json: stdout is not one JSON document (${(err as Error).message}): ${stdout.slice(0, 300)}`);
  }
  if (!validate(doc)) {
    const why = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('; ');
    throw new Error(`regfs ${command} --json does not match schemas/${command}.schema.json: ${why}`);
  }
  if (doc['exitCode'] !== exitCode) throw new Error(`regfs ${command} --json says exitCode ${String(doc['exitCode'])}, the process exited ${exitCode}`);
  return doc;
}
