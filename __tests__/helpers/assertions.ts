// Shared assertions.
import { InvalidArgumentError } from '../../src';

/** Runs `fn` and returns the InvalidArgumentError (a TypeError) it threw, or fails the test. */
export function thrownBy(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return error as InvalidArgumentError;
  }
  throw new Error('expected a TypeError, nothing was thrown');
}
