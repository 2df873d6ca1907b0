/**
 * Lua for Redis locks held under a random token: only the holder may release or extend its lock
 * (a lock that expired and was taken by another process is left alone).
 */
export const RELEASE_IF_HOLDER = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;
/** ARGV[2]: the new lifetime in milliseconds. */
export const RENEW_IF_HOLDER = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`;
