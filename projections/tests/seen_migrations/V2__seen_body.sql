-- A readers' index, deferred during a rebuild.
CREATE INDEX seen_body ON seen (body);
