CREATE INDEX notes_created_at ON notes (created_at DESC);
