-- Whose address a verification request is for: a patient's (on the
-- record) or a professional's or carer's (on the person).
ALTER TABLE verifications ADD COLUMN addressee text NOT NULL DEFAULT 'patient';
