-- Runs once, when the container initializes an empty data directory.
CREATE EXTENSION IF NOT EXISTS defendable;
