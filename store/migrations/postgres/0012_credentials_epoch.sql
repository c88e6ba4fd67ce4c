-- A counter every change to who may sign in bumps (a revoked session or
-- token, a disabled account, a new password), in the change's own
-- transaction. A server that keeps verified credentials in memory polls it
-- and forgets them all when it moves: a revocation made by another process
-- (the command line, another node) takes effect there within the poll
-- period, without a database lookup on every request.

CREATE TABLE credentials_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL
);

INSERT INTO credentials_epoch (id, epoch) VALUES (1, 0);
