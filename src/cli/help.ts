/**
 * Help, shell completion and the manual page, all generated from the one commander tree, so
 * they cannot disagree with what the parser accepts.
 *
 * Each command module describes its commands with `document(cmd, { uses, examples })`: which
 * global options the command honours (its help lists exactly those under "Global Options") and a
 * few example invocations (shown after its help, and in the man page). A command without such a
 * description — one added later by another module — still gets everything else for free: its
 * help lists every global option, and completion and the man page include it.
 */
import { type Command, Help, type Option } from 'commander';

/** The groups of global options a command may honour. */
export type GlobalGroup = 'library' | 'space' | 'json' | 'blobs' | 's3';

export interface CommandDoc {
  /** Global option groups the command honours (default: all). */
  uses?: GlobalGroup[];
  /** `[command line, what it does]`, the command line without the leading `smhfs `. */
  examples?: Array<[string, string]>;
}

const DOCS = new WeakMap<Command, CommandDoc>();
/** Global option (long flag) → its group. */
const GROUP_OF = new Map<string, GlobalGroup>();

export function globalGroup(option: Option, group: GlobalGroup): Option {
  if (option.long) GROUP_OF.set(option.long, group);
  return option;
}

/** Attach the docs of a table keyed by command path (`trash restore`) to the commands of `program`. */
export function applyDocs(program: Command, docs: Record<string, CommandDoc>): void {
  for (const info of walk(program).slice(1)) {
    const doc = docs[info.path.join(' ')];
    if (doc) document(info.cmd, doc);
  }
}

/** Attach `doc` to `cmd` and add its examples after its help. */
export function document<C extends Command>(cmd: C, doc: CommandDoc): C {
  DOCS.set(cmd, doc);
  if (doc.examples?.length) {
    cmd.addHelpText('after', () => `\nExamples:\n${doc.examples!.map(([line, what]) => `  $ smhfs ${line}\n      ${what}`).join('\n')}\n`);
  }
  return cmd;
}

export function docOf(cmd: Command): CommandDoc | undefined {
  return DOCS.get(cmd);
}

/** Global options `cmd` honours: those of its groups (all when undocumented), never --version/--help. */
export function honouredGlobals(cmd: Command, all: readonly Option[]): Option[] {
  let doc: CommandDoc | undefined;
  for (let c: Command | null = cmd; c && !doc; c = c.parent) doc = DOCS.get(c);
  const uses = doc?.uses;
  return all.filter((o) => {
    if (o.long === '--version' || o.long === '--help') return false;
    const g = o.long ? GROUP_OF.get(o.long) : undefined;
    return uses === undefined || g === undefined || uses.includes(g);
  });
}

/** Help settings for the whole tree (inherited by every `.command()`). */
export const HELP_CONFIG: Partial<Help> = {
  showGlobalOptions: true,
  sortSubcommands: false,
  visibleGlobalOptions(this: Help, cmd: Command): Option[] {
    return honouredGlobals(cmd, Help.prototype.visibleGlobalOptions.call(this, cmd));
  },
};

// ───────────────────────────── the tree, flattened ─────────────────────────────

export interface CommandInfo {
  /** `['trash', 'restore']`; `[]` for the program itself. */
  path: string[];
  cmd: Command;
  /** Options of the command itself (help excluded). */
  options: Option[];
  /** Global options it honours. */
  globals: Option[];
  subcommands: Command[];
}

export function walk(program: Command): CommandInfo[] {
  const out: CommandInfo[] = [];
  const globals = program.options.filter((o) => !o.hidden);
  const visit = (cmd: Command, path: string[]): void => {
    const subs = cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
    out.push({
      path,
      cmd,
      options: path.length === 0 ? [] : cmd.options.filter((o) => !o.hidden && o.long !== '--help'),
      globals: path.length === 0 ? honouredGlobals(cmd, globals) : honouredGlobals(cmd, globals),
      subcommands: subs,
    });
    for (const sub of subs) visit(sub, [...path, sub.name()]);
  };
  visit(program, []);
  return out;
}

function flags(o: Option): string[] {
  return [o.short, o.long].filter((f): f is string => typeof f === 'string');
}

/** Does the option's value name a local path (complete file names)? */
function takesPath(o: Option): boolean {
  return /<(dir|file|path|mountpoint|src)[^>]*>/i.test(o.flags);
}

// ───────────────────────────── completion ─────────────────────────────

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** A bash completion script (`source <(smhfs completion bash)`); zsh loads it through bashcompinit. */
export function bashCompletion(program: Command): string {
  const infos = walk(program);
  const key = (i: CommandInfo): string => q(i.path.join(' '));
  const cases = (f: (i: CommandInfo) => string): string =>
    infos.map((i) => `    ${key(i)}) echo ${q(f(i))} ;;`).join('\n');
  const valued = (i: CommandInfo): string =>
    [...i.options, ...i.globals].filter((o) => o.required || o.optional).flatMap(flags).join(' ');
  const pathValued = (i: CommandInfo): string =>
    [...i.options, ...i.globals].filter((o) => (o.required || o.optional) && takesPath(o)).flatMap(flags).join(' ');
  const choices: string[] = [];
  for (const i of infos) {
    for (const o of [...i.options, ...i.globals]) {
      if (o.argChoices?.length) for (const f of flags(o)) choices.push(`    ${q(f)}) echo ${q(o.argChoices.join(' '))} ;;`);
    }
  }
  return `# bash completion for smhfs (generated by "smhfs completion bash"; zsh: "smhfs completion zsh")
_smhfs_subcommands() {
  case "$1" in
${cases((i) => i.subcommands.map((c) => c.name()).join(' '))}
  esac
}
_smhfs_options() {
  case "$1" in
${cases((i) => [...i.options, ...i.globals].flatMap((o) => (o.long ? [o.long] : flags(o))).join(' ') + (i.path.length ? ' --help' : ' --help --version'))}
  esac
}
_smhfs_valued() {
  case "$1" in
${cases(valued)}
  esac
}
_smhfs_path_valued() {
  case "$1" in
${cases(pathValued)}
  esac
}
_smhfs_arg_choices() {
  case "$1" in
${cases((i) => (i.path.join(' ') === 'help' ? infos.filter((x) => x.path.length === 1).map((x) => x.path[0]).join(' ') : (i.cmd.registeredArguments[0]?.argChoices ?? []).join(' ')))}
  esac
}
_smhfs_choices() {
  case "$1" in
${[...new Set(choices)].join('\n')}
  esac
}
_smhfs() {
  local cur prev word path="" i skip=0
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev=""
  ((COMP_CWORD > 0)) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    if ((skip)); then skip=0; continue; fi
    case "$word" in
      --*=*) ;;
      -*) [[ " $(_smhfs_valued "$path") " == *" $word "* ]] && skip=1 ;;
      *) [[ " $(_smhfs_subcommands "$path") " == *" $word "* ]] && path="\${path:+$path }$word" ;;
    esac
  done
  if [[ "$prev" == -* && " $(_smhfs_valued "$path") " == *" $prev "* ]]; then
    local values
    values="$(_smhfs_choices "$prev")"
    if [[ -n "$values" ]]; then
      mapfile -t COMPREPLY < <(compgen -W "$values" -- "$cur")
    elif [[ " $(_smhfs_path_valued "$path") " == *" $prev "* ]]; then
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    else
      COMPREPLY=()
    fi
    return 0
  fi
  if [[ "$cur" == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_smhfs_options "$path")" -- "$cur")
    return 0
  fi
  local subs
  subs="$(_smhfs_subcommands "$path")$(_smhfs_arg_choices "$path")"
  if [[ -n "$subs" ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
    return 0
  fi
  mapfile -t COMPREPLY < <(compgen -f -- "$cur")
}
complete -o filenames -o bashdefault -F _smhfs smhfs
`;
}

/** zsh: the bash function through zsh's bashcompinit (`source <(smhfs completion zsh)`). */
export function zshCompletion(program: Command): string {
  return `# zsh completion for smhfs (generated by "smhfs completion zsh")
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program)}`;
}

/** fish: `smhfs completion fish > ~/.config/fish/completions/smhfs.fish`. */
export function fishCompletion(program: Command): string {
  const lines = ['# fish completion for smhfs (generated by "smhfs completion fish")', 'complete -c smhfs -f'];
  const fq = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const infos = walk(program);
  const allNames = infos.filter((i) => i.path.length === 1).map((i) => i.path[0]!);
  for (const i of infos) {
    const cond =
      i.path.length === 0
        ? `not __fish_seen_subcommand_from ${allNames.join(' ')}`
        : i.path.length === 1
          ? `__fish_seen_subcommand_from ${i.path[0]}${i.subcommands.length ? ` && not __fish_seen_subcommand_from ${i.subcommands.map((c) => c.name()).join(' ')}` : ''}`
          : `__fish_seen_subcommand_from ${i.path[0]} && __fish_seen_subcommand_from ${i.path[i.path.length - 1]}`;
    for (const sub of i.subcommands) {
      lines.push(`complete -c smhfs -n ${fq(cond)} -a ${fq(sub.name())} -d ${fq(firstLine(sub.description()))}`);
    }
    for (const o of i.path.length === 0 ? i.globals : i.options) {
      const parts = [`complete -c smhfs -n ${fq(cond)}`];
      if (o.long) parts.push(`-l ${o.long.replace(/^--/, '')}`);
      if (o.short) parts.push(`-s ${o.short.replace(/^-/, '')}`);
      if (o.required || o.optional) parts.push(o.argChoices?.length ? `-x -a ${fq(o.argChoices.join(' '))}` : takesPath(o) ? '-r -F' : '-x');
      parts.push(`-d ${fq(firstLine(o.description))}`);
      lines.push(parts.join(' '));
    }
    if (i.path.length > 0 && i.subcommands.length === 0 && i.cmd.registeredArguments.length > 0) {
      lines.push(`complete -c smhfs -n ${fq(cond)} -F`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? '';
}

// ───────────────────────────── the manual page ─────────────────────────────

/** roff escapes: backslashes, leading dots/quotes, hyphens in option names. */
function roff(s: string): string {
  return s
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/gm, '\\&$1');
}

export interface ManExtras {
  version: string;
  date: string;
  /** More sections, `[TITLE, paragraphs…]` (plain text). */
  sections: Array<[string, string[]]>;
}

/** smhfs(1) in man(7) macros, from the same definitions as `--help`. */
export function manPage(program: Command, extras: ManExtras): string {
  const helper = program.createHelp();
  const out: string[] = [];
  out.push(`.TH SMHFS 1 "${extras.date}" "smhfs ${roff(extras.version)}" "User Commands"`);
  out.push('.SH NAME', `smhfs \\- ${roff(program.description())}`);
  out.push('.SH SYNOPSIS', '.B smhfs', '[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]');
  const section = ([title, paras]: [string, string[]]): void => {
    out.push(`.SH ${roff(title.toUpperCase())}`);
    paras.forEach((p, n) => {
      if (n > 0) out.push('.PP');
      out.push(roff(p));
    });
  };
  extras.sections.filter(([t]) => t === 'Description').forEach(section);
  const infos = walk(program);
  const root = infos[0]!;
  out.push('.SH GLOBAL OPTIONS', 'They go before or after the command name; each command lists those it honours.');
  for (const o of root.globals) out.push('.TP', `.B ${roff(o.flags)}`, roff(helper.optionDescription(o)));
  out.push('.SH COMMANDS');
  for (const i of infos.slice(1)) {
    if (i.subcommands.length > 0 && i.cmd.registeredArguments.length === 0 && i.options.length === 0) {
      out.push('.SS', `smhfs ${roff(i.path.join(' '))}`, roff(i.cmd.description()));
      continue;
    }
    out.push('.SS', roff(`smhfs ${i.path.join(' ')} ${helper.commandUsage(i.cmd).split(' ').slice(1 + i.path.length).join(' ')}`.trim()));
    out.push(roff(i.cmd.description()));
    for (const a of i.cmd.registeredArguments) {
      if (a.description) out.push('.TP', `.I ${roff(a.name())}`, roff(helper.argumentDescription(a)));
    }
    for (const o of i.options) out.push('.TP', `.B ${roff(o.flags)}`, roff(helper.optionDescription(o)));
    const honoured = i.globals.map((o) => o.long).filter(Boolean);
    if (honoured.length < root.globals.length) {
      out.push('.PP', `Global options: ${honoured.length ? roff(honoured.join(', ')) : 'none'}.`);
    }
    const ex = DOCS.get(i.cmd)?.examples ?? [];
    if (ex.length) {
      out.push('.PP', 'Examples:', '.RS', '.nf');
      for (const [line, what] of ex) out.push(roff(`$ smhfs ${line}`), roff(`    ${what}`));
      out.push('.fi', '.RE');
    }
  }
  extras.sections.filter(([t]) => t !== 'Description').forEach(section);
  return `${out.join('\n')}\n`;
}
