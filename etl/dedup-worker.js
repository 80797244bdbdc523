// Entry point of a dedup shredding worker thread: registers the TypeScript loader (a worker does
// not inherit the one of the thread that started it), then runs the worker.
import { register } from 'tsx/esm/api';

register();
await import('./dedup-worker.ts');
