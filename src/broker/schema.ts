/**
 * The published JSON Schema of dbgov.yaml: the fixed keys (config.ts) with the sections owned
 * by policy and masking composed in. `dbgov config schema` prints it; schema/dbgov.schema.json
 * is its committed copy (a test keeps them equal), for editors and CI linters.
 */
import { maskingJsonSchema } from '../masking/config.js';
import { policyJsonSchema } from '../policy/schema.js';
import { configJsonSchema } from './config.js';

export function dbgovJsonSchema(): Record<string, unknown> {
  const { $schema: _s, $id: _i, title: _t, ...policy } = policyJsonSchema as Record<string, unknown>;
  return {
    ...configJsonSchema,
    properties: {
      ...configJsonSchema.properties,
      policy,
      masking: maskingJsonSchema,
    },
  };
}
