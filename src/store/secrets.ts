/** What the library keeps of a secret (an access token, the library secret): its SHA-256. */
import { createHash } from 'node:crypto';

/** SHA-256 (hex) of a secret: what the database keeps of access tokens and the library secret. */
export function secretHash(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}
