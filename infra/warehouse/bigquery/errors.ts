/**
 * The BigQuery warehouse's typed errors, and the one seam where errors of the client library
 * (`ApiError` of @google-cloud/common: `code` is the HTTP status, `errors` BigQuery's error
 * protos) become them, keeping the original as the cause.
 *
 * Codes (in the README's error table; `WAREHOUSE_ERROR_CODES` lists them for the docs check):
 * - `warehouse_unavailable` (503): an API call failed (network, 5xx, 429, permission, not found …);
 *   retriable for network errors, 429 and 5xx.
 * - `warehouse_load_failed` (502): a load job ended with an error, did not end in time, or loaded
 *   another row count than the manifest's; carries the job's errors.
 * - `warehouse_schema_conflict` (409): the table cannot hold the type's columns (a column's type
 *   changed, another partitioning, a column name BigQuery refuses); needs a person.
 * - `warehouse_query_failed` (400): BigQuery refused or failed the SQL; carries the job's errors.
 */
import { HourglassError } from '../../../core/errors.js';

/** One error of a BigQuery job (`ErrorProto`: reason, location, message). */
export interface JobError {
  readonly reason: string;
  readonly message: string;
  readonly location?: string;
}

/** Reasons of job errors worth retrying (BigQuery's error messages table). */
const TRANSIENT_REASONS = new Set(['backendError', 'internalError', 'rateLimitExceeded', 'timeout', 'jobBackendError']);

function jobErrorText(errors: readonly JobError[]): string {
  return errors.map((e) => (e.location ? `${e.message} (${e.location})` : e.message)).join('; ');
}

export class WarehouseUnavailable extends HourglassError {
  readonly code = 'warehouse_unavailable';
  readonly httpStatus = 503;
  readonly retriable: boolean;
  constructor(
    context: { operation: string; status?: number; reason?: string },
    retriable: boolean,
    options?: { cause?: unknown },
  ) {
    const why = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(`BigQuery ${context.operation} failed${why}`, context, options);
    this.retriable = retriable;
  }
}

export type LoadFailure = 'job_failed' | 'row_count_mismatch' | 'timeout';

export class WarehouseLoadFailed extends HourglassError {
  readonly code = 'warehouse_load_failed';
  readonly httpStatus = 502;
  readonly retriable: boolean;
  constructor(
    context: {
      type: string;
      /** The destination with its partition decorator, e.g. `EndSong$2026112210`. */
      destination: string;
      jobId: string;
      failure: LoadFailure;
      expectedRows?: number;
      loadedRows?: number;
    },
    /** The job's errors (`status.errorResult` first, then `status.errors`). */
    readonly jobErrors: readonly JobError[] = [],
  ) {
    const what =
      context.failure === 'row_count_mismatch'
        ? `loaded ${context.loadedRows ?? 'an unknown number of'} rows, the manifest says ${context.expectedRows}`
        : context.failure === 'timeout'
          ? 'did not finish in time'
          : `failed: ${jobErrorText(jobErrors)}`;
    super(`BigQuery load job ${context.jobId} into ${context.destination} ${what}`, context);
    this.retriable =
      context.failure === 'timeout' ||
      (context.failure === 'job_failed' && jobErrors.length > 0 && TRANSIENT_REASONS.has(jobErrors[0]?.reason ?? ''));
  }
}

export class WarehouseSchemaConflict extends HourglassError {
  readonly code = 'warehouse_schema_conflict';
  readonly httpStatus = 409;
  readonly retriable = false;
  constructor(context: { type: string; column?: string; rule: string }) {
    super(
      `BigQuery table of ${context.type}${context.column ? `, column ${context.column}` : ''}: ${context.rule}`,
      context,
    );
  }
}

export class WarehouseQueryFailed extends HourglassError {
  readonly code = 'warehouse_query_failed';
  readonly httpStatus = 400;
  readonly retriable = false;
  constructor(
    context: { jobId?: string },
    readonly jobErrors: readonly JobError[],
    options?: { cause?: unknown },
  ) {
    super(`BigQuery query failed: ${jobErrorText(jobErrors)}`, context, options);
  }
}

/** The HTTP status of a client-library error (undefined for network errors). */
export function httpStatusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** BigQuery's error protos of a client-library error (its `errors`), as JobErrors. */
export function apiErrorsOf(err: unknown): JobError[] {
  const errors = (err as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors.map((e: { reason?: unknown; message?: unknown; location?: unknown }) => ({
    reason: typeof e.reason === 'string' ? e.reason : 'unknown',
    message: typeof e.message === 'string' ? e.message : String(e.message),
    ...(typeof e.location === 'string' && e.location !== '' ? { location: e.location } : {}),
  }));
}

/** Any failure of an API call → WarehouseUnavailable (typed errors pass unchanged). */
export function apiError(err: unknown, operation: string): HourglassError {
  if (err instanceof HourglassError) return err;
  const status = httpStatusOf(err);
  const reason = apiErrorsOf(err)[0]?.reason;
  const retriable = status === undefined || status === 429 || status >= 500 || reason === 'rateLimitExceeded';
  return new WarehouseUnavailable(
    { operation, ...(status !== undefined ? { status } : {}), ...(reason !== undefined ? { reason } : {}) },
    retriable,
    { cause: err },
  );
}

/** The codes of these errors with their HTTP status (the README's error table lists them). */
export const WAREHOUSE_ERROR_CODES: Readonly<Record<string, number>> = {
  warehouse_unavailable: 503,
  warehouse_load_failed: 502,
  warehouse_schema_conflict: 409,
  warehouse_query_failed: 400,
};
