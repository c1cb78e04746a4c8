"""Multipart uploads whose size is checked as they arrive, never held whole first."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework import exceptions, parsers, status


class UploadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The upload is too large."
    default_code = "too_large"


class _SizeLimit(FileUploadHandler):
    """First of the request's handlers: counts the files' bytes, stops past a limit.

    Django's own handlers then keep a small file in memory and spool a larger one
    to a temporary file, a chunk (64 KiB) at a time.
    """

    def __init__(self, request, *, maximum: int) -> None:
        super().__init__(request)
        self.maximum = maximum
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.maximum:
            raise UploadTooLarge(
                {
                    "file": [
                        f"the file is larger than {self.maximum} bytes; "
                        "use manage.py import_leads"
                    ]
                }
            )
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the handlers after this one make the file


class LeadImportParser(parsers.MultiPartParser):
    """Multipart, with the files capped at settings.API_LEAD_IMPORT_MAX_BYTES."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        handlers = [
            _SizeLimit(request, maximum=settings.API_LEAD_IMPORT_MAX_BYTES),
            *request.upload_handlers,
        ]
        parser = DjangoMultiPartParser(
            meta, stream, handlers, parsers.get_encoding(parser_context)
        )
        try:
            data, files = parser.parse()
        except MultiPartParserError as error:
            raise exceptions.ParseError(
                f"Multipart form parse error - {error}"
            ) from None
        except UploadTooLarge:
            for handler in handlers:  # the temporary file spooled so far
                if hasattr(handler, "file"):
                    handler.file.close()
            raise
        return parsers.DataAndFiles(data, files)
