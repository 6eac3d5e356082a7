// Typed errors of model loading. Each names the file, field or tensor at fault and, where there is
// one, what would have been valid, so a user pointing the engine at a model folder knows what to fix.

export class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A config.json (or generation_config.json) field that is missing, mistyped or out of range. */
export class ModelConfigError extends ModelError {
  constructor(
    readonly field: string,
    readonly problem: string,
    readonly valid: string,
  ) {
    super(`config field '${field}': ${problem} (expected ${valid})`);
  }
}

/** A malformed .safetensors file; `tensor` is null when the fault is not tied to one tensor. */
export class SafetensorsError extends ModelError {
  constructor(
    readonly fileName: string,
    readonly tensor: string | null,
    readonly problem: string,
  ) {
    super(`${fileName}${tensor === null ? '' : `: tensor '${tensor}'`}: ${problem}`);
  }
}

/** A parameter the architecture needs is in none of the weight files. */
export class MissingTensorError extends ModelError {
  constructor(
    readonly tensors: readonly string[],
    readonly architecture: string,
  ) {
    const shown = tensors.slice(0, 8).join(', ') + (tensors.length > 8 ? `, … (${tensors.length} in all)` : '');
    super(`${architecture} model is missing ${tensors.length === 1 ? 'tensor' : 'tensors'} ${shown}`);
  }
}

/** A tensor whose shape disagrees with what config.json implies. */
export class TensorShapeError extends ModelError {
  constructor(
    readonly tensor: string,
    readonly expected: readonly number[],
    readonly actual: readonly number[],
  ) {
    super(`tensor '${tensor}' has shape [${actual.join(', ')}], config.json implies [${expected.join(', ')}]`);
  }
}

/** A valid model that uses an architecture or feature this engine does not implement. */
export class UnsupportedModelError extends ModelError {
  constructor(
    readonly feature: string,
    readonly supported: readonly string[],
    detail = '',
  ) {
    super(`unsupported ${feature}${detail ? ` (${detail})` : ''}; supported: ${supported.join(', ')}`);
  }
}

/** A model file that is missing, unreadable or not what its name promises (bad JSON, HTTP error). */
export class ModelFileError extends ModelError {
  constructor(
    readonly path: string,
    readonly problem: string,
    readonly status: number | null = null,
  ) {
    super(`${path}: ${problem}`);
  }
}

/** tokenizer.json / tokenizer_config.json that the tokenizer library cannot build a tokenizer from. */
export class TokenizerError extends ModelError {}

/** A weight that is NaN or infinite: the model would compute garbage (greedy returns token 0 forever). */
export class NonFiniteWeightError extends ModelError {
  constructor(
    readonly tensor: string,
    readonly index: number,
  ) {
    super(`tensor '${tensor}' holds a non-finite value (NaN or infinity) at element ${index}: the weights are corrupt; download them again or convert them anew`);
  }
}
