/**
 * SMH access tokens and grants (SPEC H2, C5). The store keeps tokens (createToken/checkToken); this
 * module decides which grant each SMH operation needs — the dialect's job.
 *
 *  - `admin` and `space_admin` allow everything in the token's space.
 *  - A `_force` grant allows what its plain grant allows, plus the `overwrite` strategy.
 *  - Creating a link is allowed by create_symlink or upload_file (seed: "Required permissions:
 *    admin, space_admin, or upload_file/upload_file_force/create_symlink/create_symlink_force").
 *  - Reads (download, info, directory and recycle-bin listing, task query) need a valid token of
 *    the space and no particular grant, as in SMH.
 */
import type { FastifyRequest } from 'fastify';
import { fail } from '../errors.js';
import type { Conflict } from '../store/types.js';
import { wire } from './errors.js';
import type { HttpLibrary, TokenInfo } from './store-port.js';

export const GRANTS = [
  'admin',
  'space_admin',
  'create_directory',
  'upload_file',
  'upload_file_force',
  'create_symlink',
  'create_symlink_force',
  'move_file',
  'move_file_force',
  'move_directory',
  'move_directory_force',
  'copy_file',
  'copy_file_force',
  'copy_directory',
  'delete_file',
  'delete_directory',
  'restore_recycled',
  'delete_recycled',
] as const;
export type Grant = (typeof GRANTS)[number];

export type Operation =
  | 'create_symlink'
  | 'upload_file'
  | 'move_file'
  | 'move_directory'
  | 'copy_file'
  | 'copy_directory'
  | 'create_directory'
  | 'delete_file'
  | 'delete_directory'
  | 'restore_recycled'
  | 'delete_recycled';

/** Grants that allow an operation; with `overwrite` only the `_force` ones (C5). */
export function grantsFor(op: Operation, conflict: Conflict | undefined): string[] {
  const force = conflict === 'overwrite';
  switch (op) {
    case 'create_symlink':
      return force ? ['create_symlink_force', 'upload_file_force'] : ['create_symlink', 'create_symlink_force', 'upload_file', 'upload_file_force'];
    case 'upload_file':
      return force ? ['upload_file_force'] : ['upload_file', 'upload_file_force'];
    case 'move_file':
      return force ? ['move_file_force'] : ['move_file', 'move_file_force'];
    case 'move_directory':
      return force ? ['move_directory_force'] : ['move_directory', 'move_directory_force'];
    case 'copy_file':
      return force ? ['copy_file_force'] : ['copy_file', 'copy_file_force'];
    case 'copy_directory':
      return ['copy_directory'];
    default:
      return [op];
  }
}

export function requireGrant(token: TokenInfo, op: Operation, conflict?: Conflict): void {
  if (token.grants.includes('admin') || token.grants.includes('space_admin')) return;
  const ok = grantsFor(op, conflict);
  if (ok.some((g) => token.grants.includes(g))) return;
  const how = conflict === 'overwrite' ? ' with conflict_resolution_strategy=overwrite' : '';
  throw fail('NoPermission', `this operation${how} needs one of the grants ${ok.join(', ')} (the token has ${token.grants.join(', ') || 'none'})`);
}

/** Parse `grant=a,b` of the token endpoint / CLI; unknown names are refused. */
export function parseGrants(s: string | undefined): string[] {
  const list = (s ?? '')
    .split(',')
    .map((g) => g.trim())
    .filter((g) => g !== '');
  for (const g of list) {
    if (!(GRANTS as readonly string[]).includes(g)) throw fail('InvalidArgument', `unknown grant ${JSON.stringify(g)} (known: ${GRANTS.join(', ')})`);
  }
  return [...new Set(list)];
}

/** The token of a request: `access_token` query parameter, else `Authorization: Bearer`. */
export function tokenOf(req: FastifyRequest): string | undefined {
  const q = (req.query as Record<string, unknown> | undefined)?.access_token;
  if (typeof q === 'string' && q !== '') return q;
  const h = req.headers.authorization;
  if (typeof h === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * H2: missing → 400 EmptyAccessToken; unknown/expired or of another library → 403
 * InvalidAccessToken; of another space → 403 NoPermission.
 */
export async function authenticate(req: FastifyRequest, lib: HttpLibrary, libraryId: string, spaceId: string): Promise<TokenInfo> {
  const token = tokenOf(req);
  if (token === undefined) throw wire('EmptyAccessToken', 'an access token is required (access_token query parameter or Authorization: Bearer)');
  const info = await lib.checkToken(token);
  if (!info) throw wire('InvalidAccessToken', 'the access token is unknown or has expired');
  if (libraryId !== lib.libraryId) throw wire('InvalidAccessToken', `the access token does not belong to library ${libraryId}`);
  if (spaceId !== info.space) throw fail('NoPermission', `the access token is for space ${info.space}, not ${spaceId}`);
  return info;
}
