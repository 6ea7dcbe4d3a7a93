/** SQLite's errors as the store's domain errors (SQLITE_BUSY → Busy, read-only → LibraryReadOnly). */
import { SmhError } from '../../errors.js';

export function sqliteToDomain(e: unknown): unknown {
  if (e instanceof SmhError) return e;
  const code = (e as { code?: string }).code ?? '';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new SmhError('Busy', 'the library is busy (another process holds a write lock); try again', undefined, { cause: e });
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM') {
    return new SmhError('LibraryReadOnly', 'the library cannot be written (read-only folder or file); fix its permissions', undefined, { cause: e });
  }
  if (code.startsWith('SQLITE_')) {
    return new SmhError('Internal', `database error ${code}: ${(e as Error).message}`, undefined, { cause: e });
  }
  return e;
}
