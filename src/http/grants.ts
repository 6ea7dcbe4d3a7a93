/**
 * SMH access tokens and grants (SPEC H2, C5). The store keeps tokens (lib.tokens.create/check, by
 * hash); this module decides which grants each SMH operation needs — the dialect's job — from one
 * table, `GRANT_TABLE`:
 *
 *  - `base`: the operation itself needs one of these. Each endpoint has its operation: the file
 *    endpoint moves and copies files and links, the directory endpoint directories (the store
 *    checks the source's kind in the same transaction).
 *  - `force`: `conflict_resolution_strategy=overwrite` also needs one of these — the operation's
 *    own `_force` grant, or where SMH has none (copy_directory, create_directory,
 *    restore_recycled) the file grant that allows replacing a file.
 *  - `replaceFile`: actually replacing a file or link (it goes to the recycle bin) needs one of
 *    these: the file grant with `_force` of the operation's family. Checked by the store's
 *    `authorize` hook inside its transaction, so it cannot race the change.
 *  - `admin` and `space_admin` allow everything in the token's space.
 *  - Creating a link is allowed by create_symlink or upload_file (seed: "Required permissions:
 *    admin, space_admin, or upload_file/upload_file_force/create_symlink/create_symlink_force").
 *  - Reads (download, info, directory and recycle-bin listing, task query) need a valid token of
 *    the space and no particular grant, as in SMH.
 */
import type { FastifyRequest } from 'fastify';
import { fail } from '../errors.js';
import type { Authorize, Conflict } from '../store/types.js';
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

export interface GrantRule {
  /** The operation needs one of these. */
  base: readonly Grant[];
  /** With `overwrite`, also one of these. */
  force?: readonly Grant[];
  /** Replacing a file or link (to the bin), also one of these. */
  replaceFile?: readonly Grant[];
}

const LINK_FORCE = ['create_symlink_force', 'upload_file_force'] as const;

/** C5, the one table (native-notes/http.md). */
export const GRANT_TABLE: Record<Operation, GrantRule> = {
  create_symlink: { base: ['create_symlink', 'create_symlink_force', 'upload_file', 'upload_file_force'], force: LINK_FORCE, replaceFile: LINK_FORCE },
  upload_file: { base: ['upload_file', 'upload_file_force'], force: ['upload_file_force'], replaceFile: ['upload_file_force'] },
  move_file: { base: ['move_file', 'move_file_force'], force: ['move_file_force'], replaceFile: ['move_file_force'] },
  move_directory: { base: ['move_directory', 'move_directory_force'], force: ['move_directory_force'], replaceFile: ['move_file_force'] },
  copy_file: { base: ['copy_file', 'copy_file_force'], force: ['copy_file_force'], replaceFile: ['copy_file_force'] },
  copy_directory: { base: ['copy_directory'], force: ['copy_file_force'], replaceFile: ['copy_file_force'] },
  create_directory: { base: ['create_directory'], force: ['upload_file_force'], replaceFile: ['upload_file_force'] },
  restore_recycled: { base: ['restore_recycled'], force: ['upload_file_force'], replaceFile: ['upload_file_force'] },
  delete_file: { base: ['delete_file'] },
  delete_directory: { base: ['delete_directory'] },
  delete_recycled: { base: ['delete_recycled'] },
};

function isAdmin(token: TokenInfo): boolean {
  return token.grants.includes('admin') || token.grants.includes('space_admin');
}

function need(token: TokenInfo, anyOf: readonly string[], what: string): void {
  if (anyOf.some((g) => token.grants.includes(g))) return;
  throw fail('NoPermission', `${what} needs one of the grants ${anyOf.join(', ')} (the token has ${token.grants.join(', ') || 'none'})`);
}

/** What the request alone asks for (before the store is consulted): the operation, and `overwrite`. */
export function requireGrant(token: TokenInfo, op: Operation, conflict?: Conflict): void {
  if (isAdmin(token)) return;
  const rule = GRANT_TABLE[op];
  need(token, rule.base, `this operation (${op})`);
  if (conflict === 'overwrite' && rule.force) need(token, rule.force, `${op} with conflict_resolution_strategy=overwrite`);
}

/** The store's hook for what only it knows: replacing a file or link needs `replaceFile` (C5). */
export function authorizer(token: TokenInfo, op: Operation): Authorize {
  return (facts) => {
    if (isAdmin(token)) return;
    const rule = GRANT_TABLE[op];
    if (facts.replacing !== undefined && facts.replacing !== 'dir' && rule.replaceFile) {
      need(token, rule.replaceFile, `${op} replacing a ${facts.replacing === 'link' ? 'link' : 'file'}`);
    }
  };
}

/** Parse `grant=a,b` of the token endpoint / CLI; unknown names are refused. */
export function parseGrants(s: string | undefined): string[] {
  const list = (s ?? '')
    .split(',')
    .map((g) => g.trim())
    .filter((g) => g !== '');
  for (const g of list) {
    if (!(GRANTS as readonly string[]).includes(g)) {
      throw fail('InvalidArgument', `unknown grant ${JSON.stringify(g.slice(0, 64))} (known: ${GRANTS.join(', ')})`);
    }
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
  const info = await lib.tokens.check(token);
  if (!info) throw wire('InvalidAccessToken', 'the access token is unknown or has expired');
  if (libraryId !== lib.libraryId) throw wire('InvalidAccessToken', 'the access token does not belong to this library');
  if (spaceId !== info.space) throw fail('NoPermission', `the access token is for space ${info.space}, not this one`);
  return info;
}
