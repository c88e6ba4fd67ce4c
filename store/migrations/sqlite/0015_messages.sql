-- Messages: one thread per study between the site and its readers, with
-- read receipts (who read each message, and when). Messages are never
-- edited or deleted: the thread is part of the clinical record.

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies(id),
    author_id BIGINT NOT NULL REFERENCES users(id),
    body TEXT NOT NULL,
    sent_at BIGINT NOT NULL
);
CREATE INDEX messages_study ON messages (study_id, id);

CREATE TABLE message_reads (
    message_id BIGINT NOT NULL REFERENCES messages(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    read_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id)
);
