/** Every case of the POSIX suite, in one list (test/posix/suite.ts describes a case). */
import { registerAttrs } from './cases-attrs.js';
import { registerFiles } from './cases-files.js';
import { registerNames } from './cases-names.js';
import { registerPathErrors } from './cases-paths.js';
import { CaseList, type PosixCase } from './suite.js';

export function allCases(): PosixCase[] {
  const l = new CaseList();
  registerFiles(l);
  registerNames(l);
  registerAttrs(l);
  registerPathErrors(l);
  return l.cases;
}
