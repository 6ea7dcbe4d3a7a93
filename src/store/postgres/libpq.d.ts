// The part of the `libpq` binding (node-libpq, the binding pg-native is built on) that
// src/store/postgres/connection.ts uses. The package ships no types of its own.
declare module 'libpq' {
  interface ResultErrorFields {
    severity?: string;
    sqlState?: string;
    messagePrimary?: string;
    messageDetail?: string;
    messageHint?: string;
    schemaName?: string;
    tableName?: string;
    columnName?: string;
    constraintName?: string;
  }
  class PQ {
    connectSync(conninfo: string): void;
    finish(): void;
    errorMessage(): string;
    serverVersion(): number;
    /** 0 idle, 1 active, 2 in transaction, 3 in a failed transaction, 4 unknown (connection bad) */
    transactionStatus(): number;
    exec(text: string): void;
    execParams(text: string, params: Array<string | null>): void;
    prepare(name: string, text: string, nParams: number): void;
    execPrepared(name: string, params: Array<string | null>): void;
    resultStatus(): string;
    resultErrorMessage(): string;
    resultErrorFields(): ResultErrorFields | null;
    clear(): void;
    ntuples(): number;
    nfields(): number;
    fname(col: number): string;
    ftype(col: number): number;
    getvalue(row: number, col: number): string;
    getisnull(row: number, col: number): boolean;
    cmdTuples(): string;
    escapeLiteral(s: string): string;
    escapeIdentifier(s: string): string;
  }
  export = PQ;
}
