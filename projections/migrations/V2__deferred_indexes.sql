-- Indexes a rebuild dropped from a generation while loading it, with the
-- statement that recreates each; they are recreated (and their rows
-- removed) before the generation is switched in, also after a resumption.
CREATE TABLE deferred_indexes (
    name       text NOT NULL,
    generation integer NOT NULL,
    index_name text NOT NULL,
    definition text NOT NULL,
    PRIMARY KEY (name, generation, index_name)
);
