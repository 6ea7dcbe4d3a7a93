// Which python3 the tests run. Debian's own (/usr/bin/python3, a test dependency the Makefile
// installs), not whatever `python3` is first on the PATH: on these machines that is a pyenv shim,
// a bash script that costs ~1.6 s of wall time and ~0.6 s of CPU per start (measured: 88 starts made
// mount-posix-times take 42 s), and a throw-away uid cannot read root's home where it lives.
import { existsSync } from 'node:fs';

export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
