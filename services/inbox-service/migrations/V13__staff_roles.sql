-- Staff roles in force (admin, operator, auditor): `StaffRoleGranted` adds
-- one, `StaffRoleRevoked` removes it, `PersonDeactivated` removes them all.
-- Admins see them beside the people they find. A log that granted roles
-- before this table shows them after `careline rebuild inbox`.
CREATE TABLE staff_roles (
    person_id uuid NOT NULL,
    role      text NOT NULL,
    PRIMARY KEY (person_id, role)
);
