-- What tells two patients of the same name apart, shown to staff beside
-- the name and searched with it: date of birth (YYYY-MM-DD), hospital
-- number, NHS number, each empty when not recorded, and `identifiers`, the
-- lowercase text a search for any of them matches (the date also as
-- dd/mm/yyyy, the NHS number also spaced). A log that recorded them before
-- this table shows them after `careline rebuild inbox`.
ALTER TABLE people
    ADD COLUMN date_of_birth   text NOT NULL DEFAULT '',
    ADD COLUMN hospital_number text NOT NULL DEFAULT '',
    ADD COLUMN nhs_number      text NOT NULL DEFAULT '',
    ADD COLUMN identifiers     text NOT NULL DEFAULT '';
