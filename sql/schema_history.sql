-- Migrations applied to this file: version, name, checksum, when and by which hptune.
CREATE OR REPLACE VIEW schema_history AS
SELECT version, name, checksum, applied_at, hptune_version
FROM hptune_migrations
ORDER BY version;
