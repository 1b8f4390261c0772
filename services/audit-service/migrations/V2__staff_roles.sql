-- Staff roles in force (admin, operator, auditor), as the log grants and
-- revokes them: the audit service opens auditors' and operators' calls only
-- to the people here, whatever role a token claims.
CREATE TABLE staff_roles (
    person_id text NOT NULL,
    role      text NOT NULL,
    PRIMARY KEY (person_id, role)
);
