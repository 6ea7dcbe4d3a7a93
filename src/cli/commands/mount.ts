/**
 * Placeholder: the `mount, unmount, stats` commands. Owned by the FUSE engineer, who replaces this file.
 * Use the shared plumbing in ../context.js: `globalOptions(cmd)`, `openLibrary(opts)`,
 * `runAction(name, fn)` (the action's promise must resolve only when the command is finished).
 */
import type { Command } from 'commander';

export function register(_program: Command): void {
  // Registers nothing until its owner replaces this file.
}
