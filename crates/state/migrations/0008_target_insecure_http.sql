-- A target's base URL must be https:// unless its host is loopback (the emulator) or the target
-- says `allow_insecure_http`, because the project token and service-account secret travel with
-- every request (docs/security.md). Targets that already send to a plain http:// URL keep working:
-- they are marked as allowing it, which `mixsync target get` shows as a warning.
ALTER TABLE targets ADD COLUMN allow_insecure_http boolean NOT NULL DEFAULT false;
UPDATE targets SET allow_insecure_http = true
 WHERE base_url LIKE 'http://%'
   AND base_url !~ '^http://(localhost|127\.[0-9.]+|\[::1\])(:[0-9]+)?(/.*)?$';
