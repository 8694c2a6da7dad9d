// Errors that a user can fix (a bad file, a missing tool, a wrong flag): the CLI prints their
// message as it is, without the "internal error" wrapper it puts around compiler bugs.

export function userError(msg: string): Error {
  return Object.assign(new Error(msg), { userFacing: true });
}
