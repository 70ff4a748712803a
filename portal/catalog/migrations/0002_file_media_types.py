"""Files published before media types were recorded by suffix were all stored as application/x-netcdf."""
from django.db import migrations


def set_media_types(apps, schema_editor):
    from portal.files import media_type_for

    DatasetFile = apps.get_model("catalog", "DatasetFile")
    for f in DatasetFile.objects.exclude(name__endswith=".nc").only("id", "name", "media_type"):
        media_type = media_type_for(f.name)
        if media_type != f.media_type:
            DatasetFile.objects.filter(id=f.id).update(media_type=media_type)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(set_media_types, migrations.RunPython.noop)]
