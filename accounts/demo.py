"""The demo's people and teams, as data. ``seed_demo`` feeds them through the services."""

from datetime import date

DEMO_PASSWORD = "flex-demo-2026"

RESELLERS = [
    {"slug": "alder", "name": "Alder Software Partners", "rep": ("sam.rivera@alder.example", "Sam", "Rivera")},
    {"slug": "brightline", "name": "Brightline Solutions", "rep": ("priya.nair@brightline.example", "Priya", "Nair")},
]

TEAMS = [
    {
        "slug": "acme-engineering",
        "name": "Acme Engineering",
        "plan": "standard",
        "time_zone": "America/Chicago",
        "contract_start": date(2022, 1, 1),
        "contract_end": date(2027, 12, 31),
        "reseller": "alder",
        "members": [
            ("alex.morgan@acme.example", "Alex", "Morgan", "primary_admin"),
            ("blake.chen@acme.example", "Blake", "Chen", "secondary_admin"),
            ("casey.diaz@acme.example", "Casey", "Diaz", "report_viewer"),
            ("dana.kim@acme.example", "Dana", "Kim", "member"),
            ("eli.novak@acme.example", "Eli", "Novak", "member"),
            ("farah.haddad@acme.example", "Farah", "Haddad", "member"),
            ("gus.olsen@acme.example", "Gus", "Olsen", "member"),
            ("jordan.lee@studio.example", "Jordan", "Lee", "member"),
        ],
    },
    {
        "slug": "globex-design",
        "name": "Globex Design Studio",
        "plan": "premium",
        "time_zone": "Europe/Berlin",
        "contract_start": date(2022, 3, 1),
        "contract_end": date(2028, 2, 29),
        "reseller": "brightline",
        "members": [
            ("hana.sato@globex.example", "Hana", "Sato", "primary_admin"),
            ("ivan.petrov@globex.example", "Ivan", "Petrov", "secondary_admin"),
            ("julia.costa@globex.example", "Julia", "Costa", "report_viewer"),
            ("kofi.mensah@globex.example", "Kofi", "Mensah", "member"),
            ("lena.vogel@globex.example", "Lena", "Vogel", "member"),
            ("marco.rossi@globex.example", "Marco", "Rossi", "member"),
            ("jordan.lee@studio.example", "Jordan", "Lee", "report_viewer"),
        ],
    },
]

# Two more customers of Alder (Acme's reseller), so that its rep has a team to move a pack
# to, and customers in every state: Initech runs low, Northwind is healthy, Acme has tokens
# expiring within 90 days. Their history is short (billing/demo.py), so seeding stays fast.
TEAMS += [
    {
        "slug": "initech-architects",
        "name": "Initech Architects",
        "plan": "standard",
        "time_zone": "America/New_York",
        "contract_start": date(2025, 1, 1),
        "contract_end": date(2028, 6, 30),
        "reseller": "alder",
        "members": [
            ("nina.park@initech.example", "Nina", "Park", "primary_admin"),
            ("omar.farouk@initech.example", "Omar", "Farouk", "member"),
            ("paula.reyes@initech.example", "Paula", "Reyes", "member"),
        ],
    },
    {
        "slug": "northwind-survey",
        "name": "Northwind Survey",
        "plan": "premium",
        "time_zone": "Europe/London",
        "contract_start": date(2024, 9, 1),
        "contract_end": date(2029, 8, 31),
        "reseller": "alder",
        "members": [
            ("quinn.harper@northwind.example", "Quinn", "Harper", "primary_admin"),
            ("ravi.shah@northwind.example", "Ravi", "Shah", "member"),
        ],
    },
]

STAFF = ("staff@flexadmin.example", "Platform", "Staff")
