import { DbgovCommand } from '../../cli/base-command.js';
import { dbgovJsonSchema } from '../../broker/schema.js';

export default class ConfigSchema extends DbgovCommand<Record<string, unknown>> {
  static override summary = 'Print the JSON Schema of dbgov.yaml (for editors and CI linters).';
  static override examples = ['<%= config.bin %> config schema > dbgov.schema.json'];

  async run(): Promise<Record<string, unknown>> {
    const schema = dbgovJsonSchema();
    if (!this.jsonEnabled()) process.stdout.write(`${JSON.stringify(schema, null, 2)}\n`);
    return schema;
  }
}
