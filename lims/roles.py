"""Who may do what. Plain data, so the CLI can show it without loading the store."""

ROLES = ("technician", "qa", "admin")

# Technicians and QA record the work; only QA signs (a specification version too); only
# admin manages users and the other site settings and takes or restores a backup (a copy
# of every patient record, beyond the trail's reach).
# Every role may read records and the audit trail. Admin and QA keep the equipment and
# storage registers; anyone may take equipment out of service (whoever finds a failed
# incubator must be able to); whoever records bench work names equipment and stores items.
GRANTS: dict[str, frozenset[str]] = {
    "manage_users": frozenset({"admin"}),
    "manage_site": frozenset({"admin"}),
    "manage_database": frozenset({"admin"}),
    "read_records": frozenset({"technician", "qa", "admin"}),
    "record_bench_work": frozenset({"technician", "qa"}),
    "sign": frozenset({"qa"}),
    "keep_registers": frozenset({"qa", "admin"}),
    "take_out_of_service": frozenset({"technician", "qa", "admin"}),
    "change_own_password": frozenset({"technician", "qa", "admin"}),
}

PERMISSION_WORDS = {
    "manage_users": "manage users",
    "manage_site": "change the site's settings",
    "manage_database": "back up or restore the database",
    "read_records": "read records",
    "record_bench_work": "record bench work",
    "sign": "sign (release, reject, close deviations)",
    "keep_registers": "keep the equipment and storage registers",
    "take_out_of_service": "take equipment out of service",
    "change_own_password": "change their own password",
}
