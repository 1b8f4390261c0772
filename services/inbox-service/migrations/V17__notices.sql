-- A notice from one of the hospital's systems is shown as the team it
-- spoke for and the system: "Renal Unit (via Appointments)". Empty for a
-- person's message, whose author is in `people`.
ALTER TABLE messages ADD COLUMN sender_label text;
