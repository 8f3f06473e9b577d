/** The password hash Better Auth uses (scrypt on libuv's thread pool); the login benchmark measures it raw. */
export { hashPassword, verifyPassword } from 'better-auth/crypto';
