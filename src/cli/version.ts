/**
 * `smhfs --version` and `smhfs version`: the package version and the commit. In a git checkout
 * (where `make` builds) git is asked at that moment (`+dirty` for uncommitted changes); a copy
 * without .git uses dist/build-info.json, which `make build` writes; else "unknown". Only these
 * two commands pay for it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface VersionInfo {
  version: string;
  /** Short commit hash, `+dirty` when the tree had uncommitted changes; `unknown` without git. */
  commit: string;
  node: string;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function commit(): string {
  // The checkout this build lives in says best what it runs (also after plain `tsc`); an
  // installed copy without .git falls back to what `make build` recorded.
  try {
    const git = (args: string[]): string =>
      execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    const top = git(['rev-parse', '--show-toplevel']);
    if (top === ROOT.replace(/\/$/, '')) {
      const hash = git(['rev-parse', '--short=12', 'HEAD']);
      const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
      return `${hash}${dirty ? '+dirty' : ''}`;
    }
  } catch {
    // no git, or not a checkout
  }
  try {
    const info = JSON.parse(readFileSync(new URL('../../build-info.json', import.meta.url), 'utf8')) as { commit?: string };
    if (info.commit) return info.commit;
  } catch {
    // not built by make
  }
  return 'unknown';
}

export function versionInfo(): VersionInfo {
  return { version: packageVersion(), commit: commit(), node: process.version };
}

/** `smhfs 0.1.0 (commit 1a2b3c4d5e6f, node v20.19.0)` */
export function versionLine(v: VersionInfo = versionInfo()): string {
  return `smhfs ${v.version} (commit ${v.commit}, node ${v.node})`;
}
