// Argument checks shared by every public constructor and method: uniform messages that name the
// option, thrown at construction rather than at first use.
import { InvalidArgumentError } from '../errors';

/** @param unit - what the number counts, for the message */
export function requirePositiveInteger(value: unknown, name: string, unit = 'milliseconds'): number {
  if (typeof value !== 'number')
    throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', `"${name}" must be a positive integer (${unit}), got ${typeName(value)}`);
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', `"${name}" must be a positive integer (${unit}), got ${value}`);
  return value;
}

export function optionalPositiveInteger(value: unknown, name: string, defaultValue: number, unit?: string): number {
  return value === undefined ? defaultValue : requirePositiveInteger(value, name, unit);
}

export function requireNonEmptyString(value: unknown, name: string, maxLength = 4096): string {
  if (typeof value !== 'string')
    throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', `"${name}" must be a non-empty string, got ${typeName(value)}`);
  if (value.length === 0)
    throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', `"${name}" must be a non-empty string, got an empty string`);
  if (value.length > maxLength)
    throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', `"${name}" must be at most ${maxLength} characters, got ${value.length}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value))
    throw new InvalidArgumentError('ERR_INVALID_ARG_VALUE', `"${name}" must not contain control characters`);
  return value;
}

export function requireOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[], defaultValue: T): T {
  if (value === undefined) return defaultValue;
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new InvalidArgumentError(
      'ERR_INVALID_ARG_VALUE',
      `"${name}" must be one of ${allowed.map((entry) => `'${entry}'`).join(', ')}, got ${typeof value === 'string' ? `'${value}'` : typeName(value)}`,
    );
  }
  return value as T;
}

export function optionalBoolean(value: unknown, name: string, defaultValue: boolean): boolean {
  if (value === undefined) return defaultValue;
  if (typeof value !== 'boolean')
    throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', `"${name}" must be a boolean, got ${typeName(value)}`);
  return value;
}

export function requireObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError('ERR_INVALID_ARG_TYPE', `"${name}" must be an object, got ${typeName(value)}`);
  return value as Record<string, unknown>;
}

export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `type ${typeof value}`;
}
