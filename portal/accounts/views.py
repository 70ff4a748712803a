"""The profile: downloads, jobs, accepted licences, applications, tokens and limits."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def profile(request):
    return render(request, "accounts/profile.html", {})
