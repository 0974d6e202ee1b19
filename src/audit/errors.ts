import { DbgovError, type DbgovErrorOptions } from '../shared/errors.js';

/**
 * The audit record could not be written. The statement it describes must be refused: running it
 * without evidence would break the promise that every executed statement is in the log.
 */
export class AuditWriteError extends DbgovError {
  constructor(message: string, options: DbgovErrorOptions = {}) {
    super('audit.write', message, {
      actions: ['Check free disk space and permissions on the broker store folder, then retry.'],
      ...options,
    });
  }
}

/** The audit store on disk is not in a shape this version can read or trust. */
export class AuditStoreError extends DbgovError {
  constructor(message: string, options: DbgovErrorOptions = {}) {
    super('audit.store', message, options);
  }
}
