// Errors of the model runner: a malformed step (a caller bug, named precisely) is not a GPU failure.

export class ForwardInputError extends Error {
  override name = 'ForwardInputError';

  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field} ${problem}`);
  }
}
