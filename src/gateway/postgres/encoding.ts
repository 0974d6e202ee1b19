/**
 * A client encoding in which the server would read statements differently from the gateway
 * (src/shared/client-encodings.ts): the session ends, at startup or when the server reports it.
 */
export const ENCODING_UNSUPPORTED = {
  sqlstate: '0A000',
  message: (encoding: string): string => `dbgov: client encoding ${encoding} is not supported through dbgov`,
  hint: 'Set the client encoding to UTF8 (for libpq clients: PGCLIENTENCODING=UTF8) and connect again.',
};
