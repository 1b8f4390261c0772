-- The engine's own bookkeeping, in schema careline_projections.

-- Which generation of each projection readers see.
CREATE TABLE projection_generations (
    name            text PRIMARY KEY,
    live_generation integer NOT NULL,
    switched_at     timestamptz NOT NULL DEFAULT now()
);

-- How far each generation of each projection has applied the log. Moved
-- only in the transaction that applies the events, and only forwards.
CREATE TABLE projection_checkpoints (
    name       text NOT NULL,
    generation integer NOT NULL,
    position   bigint NOT NULL DEFAULT 0 CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, generation)
);
