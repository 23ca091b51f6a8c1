"""Pelion / Izuma Device Management: the device event log codes.

Source: seeds/pelion-viewing-device-events-and-codes.txt (the code table, verbatim),
seeds/pelion-device-event-log.txt (message types) and CONTRACTS.md section 2.

title = the portal text, description = the explanation, corrective_action = the possible
corrective action, all verbatim ("" where the seed has none: the SYS_ codes have portal text only).

Message type (`outcome`, the API's event_type_description), from the vendor's SDK docs:
    SUCCESS  SYS_112 and every *_OK_* code
    FAIL     SYS_101, SYS_103, SYS_104, SYS_111 and every *_FAIL_* code
    SKIPPED  SYS_110
    INFO     SYS_100, SYS_102, SYS_105 to SYS_109 (SYS_102 and SYS_109 inferred)

Category (`category`, the API's event_type_category). No public code-to-category table exists;
fleetlog derives one from the failure area [I], with a small vocabulary:
    FAIL_SERVICE            SYS_100, SYS_101, SYS_102 (service errors), SYS_103, SYS_104
                            (campaign stopped by hand)
    FAIL_DEVICE             SYS_111 (device failed to reach the desired state); the device's own
                            storage, memory, application and internal errors: UPD4_FAIL_33 to
                            _38, _40 to _44
    FAIL_MANIFEST_REJECTED  manifest and package errors: UPD4_FAIL_21, _22, _23, _25, _27 to _32,
                            _39, _46 to _49
    FAIL_NETWORK            download and connection errors: UPD4_FAIL_24, _26, _45
    SUCCESS                 SYS_112, UPD2_OK_18
    SKIPPED                 SYS_110
    INFO                    SYS_105 to SYS_109

state_change (no public definition) [I]: true when the event changes the device's lifecycle or
update state: SYS_105 (deregistered), SYS_106 (registered), SYS_107 (bootstrapped), SYS_111,
SYS_112, UPD2_OK_18 and every UPD4_FAIL_*; false for the others (service errors, campaign
bookkeeping, "already at desired state").

Pelion event data is a map of strings with no fixed keys: schema None (any object).
"""

from __future__ import annotations

from typing import Final

from fleetlog.core.catalog.model import EventType
from fleetlog.core.errors import InvalidInput
from fleetlog.core.event import Outcome

__all__ = [
    "CATEGORIES",
    "EVENT_LOG_CODES",
    "UNDETERMINED_ALIAS",
    "message_type",
]

UNDETERMINED_ALIAS: Final = "UNDETERMINED"
"""The deprecated message type, read as INFO."""

FAIL_SERVICE: Final = "FAIL_SERVICE"
FAIL_DEVICE: Final = "FAIL_DEVICE"
FAIL_MANIFEST_REJECTED: Final = "FAIL_MANIFEST_REJECTED"
FAIL_NETWORK: Final = "FAIL_NETWORK"
SUCCESS: Final = "SUCCESS"
SKIPPED: Final = "SKIPPED"
INFO: Final = "INFO"

CATEGORIES: Final = (
    FAIL_SERVICE,
    FAIL_DEVICE,
    FAIL_MANIFEST_REJECTED,
    FAIL_NETWORK,
    SUCCESS,
    SKIPPED,
    INFO,
)

_MESSAGE_TYPES: Final = {
    "SUCCESS": Outcome.SUCCESS,
    "FAIL": Outcome.FAIL,
    "SKIPPED": Outcome.SKIPPED,
    "INFO": Outcome.INFO,
    UNDETERMINED_ALIAS: Outcome.INFO,
}


def message_type(value: str) -> Outcome:
    """The outcome for a Pelion message type (event_type_description), any case.

    UNDETERMINED (deprecated) reads as INFO; anything else raises InvalidInput.
    """
    outcome = _MESSAGE_TYPES.get(value.upper()) if isinstance(value, str) else None
    if outcome is None:
        raise InvalidInput("must be one of SUCCESS, FAIL, SKIPPED, INFO, UNDETERMINED", "event_type_description")
    return outcome


# (code, portal text, outcome, category, state_change)
_SERVICE: Final[tuple[tuple[str, str, Outcome, str, bool], ...]] = (
    ("SYS_100", "Service error: Device could not be reached.", Outcome.INFO, FAIL_SERVICE, False),
    (
        "SYS_101",
        "Service error: Device not registered, manifest not sent.",
        Outcome.FAIL,
        FAIL_SERVICE,
        False,
    ),
    (
        "SYS_102",
        "Service error: Device Vendor ID does not match Manifest Vendor ID.",
        Outcome.INFO,
        FAIL_SERVICE,
        False,
    ),
    (
        "SYS_103",
        "Campaign was manually stopped. Device not updated.",
        Outcome.FAIL,
        FAIL_SERVICE,
        False,
    ),
    (
        "SYS_104",
        "Campaign was manually stopped. Device may still update.",
        Outcome.FAIL,
        FAIL_SERVICE,
        False,
    ),
    ("SYS_105", "Device deregistered.", Outcome.INFO, INFO, True),
    ("SYS_106", "Device registered.", Outcome.INFO, INFO, True),
    ("SYS_107", "Device bootstrapped.", Outcome.INFO, INFO, True),
    ("SYS_108", "Device added to campaign.", Outcome.INFO, INFO, False),
    ("SYS_109", "Device removed from campaign.", Outcome.INFO, INFO, False),
    ("SYS_110", "Device already at desired state.", Outcome.SKIPPED, SKIPPED, False),
    ("SYS_111", "Device failed to reach desired state.", Outcome.FAIL, FAIL_DEVICE, True),
    ("SYS_112", "Device reached desired state.", Outcome.SUCCESS, SUCCESS, True),
)

# (code, portal text, explanation, possible corrective action, category)
_CLIENT: Final[tuple[tuple[str, str, str, str, str], ...]] = (
    (
        "UPD2_OK_18",
        "Asset update successfully completed.",
        "The firmware image has been updated successfully.",
        "",
        SUCCESS,
    ),
    (
        "UPD4_FAIL_21",
        "FW payload URI in manifest is too long.",
        "The URI in the manifest is invalid.",
        "Check the URI in the manifest.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_22",
        "Failure to parse an update manifest.",
        "The client cannot parse the manifest.",
        "Check manifest generation. Check that the correct manifest was used in the campaign.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_23",
        "Signature verification failed.",
        "The client cannot authenticate the manifest because the manifest signature the client "
        "calculated does not match the signature on the manifest.",
        "Check that certificates were provisioned correctly. Make sure the manifest is signed "
        "using the correct private key.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_24",
        "Connection lost during download.",
        "Network connection was lost during the download of the updated image.",
        "Check the device's connectivity.",
        FAIL_NETWORK,
    ),
    (
        "UPD4_FAIL_25",
        "Payload format specified by manifest is unsupported.",
        "The device does not support the payload format in the manifest.",
        "Check the payload format of the manifest.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_26",
        "Payload authenticity check failed.",
        "The hash of the payload in the manifest does not match the hash the client calculates "
        "for the downloaded image.",
        "Manifest was edited or corrupted in transit. Retry.",
        FAIL_NETWORK,
    ),
    (
        "UPD4_FAIL_27",
        "FW candidate version is rejected (is older or equal to installed one).",
        "You tried to update to a firmware version that is older than the one already on the device.",
        "Check that the updated firmware version is newer than the existing one.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_28",
        "Manifest schema version unsupported (incompatible manifest-tool version).",
        "The client does not support the schema of the received manifest.",
        "Use a manifest schema that is compatible with the device.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_29",
        "Vendor data specified in the manifest is too big.",
        "The custom vendor data size in the manifest is bigger than defined on the device.",
        "Configure the device to work with a larger vendor data size or reduce your application vendor data size.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_30",
        "Manifest with wrong Vendor ID.",
        "The Vendor ID in the received manifest does not match the Vendor ID stored on the device.",
        "Check that the device was provisioned correctly. Check the manifest.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_31",
        "Manifest with wrong Class ID.",
        "The Class ID in the received manifest does not match the Class ID stored on the device.",
        "Check that the device was provisioned correctly. Check the manifest.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_32",
        "Installed FW digest differs from the one specified in the manifest (precursor).",
        "Relevant for delta update only. The actual installed firmware digest is different from "
        "the digest specified in the manifest (precursor).",
        "Recreate the delta patch. The image you provide in the --current-fw argument, when you "
        "create the delta patch, must be the same as the firmware installed on the device.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_33",
        "Insufficient storage on a device for saving update candidate.",
        "Insufficient space on the device to store a payload of this size.",
        "Check device storage.",
        FAIL_DEVICE,
    ),
    (
        "UPD4_FAIL_34",
        "Not enough RAM.",
        "Insufficient space allocated for various Update client actions.",
        "Check device RAM.",
        FAIL_DEVICE,
    ),
    (
        "UPD4_FAIL_35",
        "Storage write error.",
        "Error during writing to non-volatile memory (NVM).",
        "Check the device storage configuration.",
        FAIL_DEVICE,
    ),
    (
        "UPD4_FAIL_36",
        "Storage read error.",
        "Error during reading from non-volatile memory (NVM).",
        "Check the device storage configuration.",
        FAIL_DEVICE,
    ),
    (
        "UPD4_FAIL_37",
        "Application rejected install authorization request.",
        "The device application rejected install authorization.",
        "Check the device application code.",
        FAIL_DEVICE,
    ),
    (
        "UPD4_FAIL_38",
        "Application rejected download authorization request.",
        "The device application rejected download authorization.",
        "Check the device application code.",
        FAIL_DEVICE,
    ),
    (
        "UPD4_FAIL_39",
        "Component name in manifest targets unknown component.",
        "The component name specified in the manifest doesn't match a component registered on the device.",
        "Check the manifest or the device application code that registers the component.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_40",
        "Update failed at installation phase.",
        "Either the installation of the component failed or the verification of the new image "
        "after the installation failed.",
        "Check the installation or the verification callbacks.",
        FAIL_DEVICE,
    ),
    (
        "UPD4_FAIL_41",
        "Non-specific internal error.",
        "Generic internal error.",
        "Call FAE.",
        FAIL_DEVICE,
    ),
    (
        "UPD4_FAIL_42",
        "Non-specific internal error - delta engine.",
        "Internal error of the delta engine.",
        "Call FAE.",
        FAIL_DEVICE,
    ),
    (
        "UPD4_FAIL_43",
        "Non-specific internal error - crypto engine.",
        "Internal error of the crypto engine.",
        "Call FAE.",
        FAIL_DEVICE,
    ),
    (
        "UPD4_FAIL_44",
        "Expected asset is not found in NVM.",
        "The update client requires an item that is missing from non-volatile memory (NVM).",
        "Check that the device was provisioned correctly.",
        FAIL_DEVICE,
    ),
    (
        "UPD4_FAIL_45",
        "Multicast abort session.",
        "Aborting the update process because of an unexpected multicast command sequence or "
        "border router request to abort.",
        "Check for network problems.",
        FAIL_NETWORK,
    ),
    (
        "UPD4_FAIL_46",
        "Failure to parse a combined package.",
        "The client cannot parse the combined package.",
        "Check combined package generation.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_47",
        "Combined package with wrong number of images.",
        "The number of images specified in the package descriptor doesn't match the number of "
        "images inside the package .",
        "Combined package was edited or corrupted in transit. Retry.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_48",
        "Image name specified in the package is too long.",
        "The name of at least one image in the package is longer than the name size defined on the device.",
        "Configure the device to work with a longer name size or reduce the length of your combined image name.",
        FAIL_MANIFEST_REJECTED,
    ),
    (
        "UPD4_FAIL_49",
        "Vendor data specified in the package descriptor is too long.",
        "The vendor data related to at least one image in the package is longer than the vendor "
        "data size defined on the device.",
        "Configure the device to work with a larger vendor data size or reduce the length of "
        "the vendor data string in the package descriptor file.",
        FAIL_MANIFEST_REJECTED,
    ),
)


def _client_outcome(code: str) -> Outcome:
    if "_OK_" in code:
        return Outcome.SUCCESS
    if "_FAIL_" in code:
        return Outcome.FAIL
    return Outcome.INFO


EVENT_LOG_CODES: Final[tuple[EventType, ...]] = (
    *(
        EventType(
            name=code,
            family="pelion",
            title=text,
            outcome=outcome,
            category=category,
            state_change=state_change,
        )
        for code, text, outcome, category, state_change in _SERVICE
    ),
    *(
        EventType(
            name=code,
            family="pelion",
            title=text,
            description=explanation,
            corrective_action=action,
            outcome=_client_outcome(code),
            category=category,
            state_change=True,  # every client code reports an update result
        )
        for code, text, explanation, action, category in _CLIENT
    ),
)
