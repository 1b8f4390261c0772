-- Teams open to every patient of the organisation (PALS, central
-- appointments, medical records): patients and carers may address them
-- without being in them.
ALTER TABLE teams ADD COLUMN open_to_patients boolean NOT NULL DEFAULT false;
