"""The ``pktchar`` commands, one module a group, registered on :data:`pktchar.cli.app.app` in the order
``pktchar --help`` lists them."""

from ..app import app
from . import device, fleet, profile, replay, train, upload

for _name, _fn in [
    ("models", profile.models_cmd),
    ("profile", profile.profile_cmd),
    ("table", profile.table_cmd),
    ("qos", profile.qos_cmd),
    ("report", profile.report_cmd),
    ("replay", replay.replay_cmd),
    ("upload", upload.upload_cmd),
    ("fleet", fleet.fleet_cmd),
    ("serve", replay.serve_cmd),
    ("compare", replay.compare_cmd),
    ("wireshark-dissector", replay.wireshark_dissector_cmd),
    ("train-sync", train.train_sync_cmd),
]:
    app.command(_name)(_fn)
replay.testbed_app.command("device")(device.testbed_device)
app.add_typer(replay.testbed_app, name="testbed")
