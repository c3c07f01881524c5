CREATE TABLE notes (
    id         bigserial PRIMARY KEY,
    body       text        NOT NULL CHECK (length(body) BETWEEN 1 AND 500),
    created_at timestamptz NOT NULL DEFAULT now()
);
