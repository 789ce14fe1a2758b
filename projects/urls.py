from django.urls import path

from . import picture_views, views, views_addons, views_milestones, views_stretch_goals

app_name = "projects"

urlpatterns = [
    path("", views.home, name="home"),
    path("start/", views.campaign_start, name="campaign_start"),
    path("my-campaigns/", views.my_campaigns, name="my_campaigns"),
    path("campaigns/<slug:slug>/", views.campaign_detail, name="campaign_detail"),
    path("campaigns/<slug:slug>/edit/<str:step>/", views.campaign_edit, name="campaign_edit"),
    path("campaigns/<slug:slug>/pictures/", picture_views.campaign_pictures, name="campaign_pictures"),
    path("campaigns/<slug:slug>/pictures/cover/", picture_views.campaign_cover_upload, name="campaign_cover_upload"),
    path(
        "campaigns/<slug:slug>/pictures/gallery/", picture_views.campaign_gallery_upload, name="campaign_gallery_upload"
    ),
    path(
        "campaigns/<slug:slug>/pictures/gallery/<slug:token>/delete/",
        picture_views.campaign_gallery_delete,
        name="campaign_gallery_delete",
    ),
    path(
        "campaigns/<slug:slug>/rewards/<int:reward_id>/picture/",
        picture_views.reward_image_upload,
        name="reward_image_upload",
    ),
    path("campaigns/<slug:slug>/preview/", views.campaign_story_preview, name="campaign_story_preview"),
    path("campaigns/<slug:slug>/rewards/", views.campaign_rewards, name="campaign_rewards"),
    path(
        "campaigns/<slug:slug>/rewards/<int:reward_id>/edit/", views.campaign_reward_edit, name="campaign_reward_edit"
    ),
    path(
        "campaigns/<slug:slug>/rewards/<int:reward_id>/delete/",
        views.campaign_reward_delete,
        name="campaign_reward_delete",
    ),
    path("campaigns/<slug:slug>/submit/", views.campaign_review, name="campaign_review"),
    path("campaigns/<slug:slug>/launch/", views.campaign_launch_view, name="campaign_launch"),
    path("campaigns/<slug:slug>/updates/new/", views.campaign_update_new, name="campaign_update_new"),
    path("campaigns/<slug:slug>/comments/", views.comment_create_view, name="comment_create"),
    path("campaigns/<slug:slug>/milestones/", views_milestones.campaign_milestones_edit, name="campaign_milestones"),
    path(
        "campaigns/<slug:slug>/milestones/<int:milestone_id>/proof/",
        views_milestones.milestone_proof,
        name="milestone_proof",
    ),
    path(
        "campaigns/<slug:slug>/milestones/<int:milestone_id>/vote/",
        views_milestones.milestone_vote_view,
        name="milestone_vote",
    ),
    path(
        "campaigns/<slug:slug>/milestones/<int:milestone_id>/extend/",
        views_milestones.milestone_extend_view,
        name="milestone_extend",
    ),
    path(
        "campaigns/<slug:slug>/stretch-goals/",
        views_stretch_goals.stretch_goals_page,
        name="campaign_stretch_goals",
    ),
    path(
        "campaigns/<slug:slug>/stretch-goals/<int:goal_id>/edit/",
        views_stretch_goals.stretch_goal_edit,
        name="stretch_goal_edit",
    ),
    path(
        "campaigns/<slug:slug>/stretch-goals/<int:goal_id>/remove/",
        views_stretch_goals.stretch_goal_remove,
        name="stretch_goal_remove",
    ),
    path("campaigns/<slug:slug>/addons/", views_addons.addons_page, name="campaign_addons"),
    path("campaigns/<slug:slug>/addons/<int:addon_id>/edit/", views_addons.addon_edit, name="addon_edit"),
    path("campaigns/<slug:slug>/addons/<int:addon_id>/remove/", views_addons.addon_remove, name="addon_remove"),
    path("campaigns/<slug:slug>/abandon/", views_milestones.campaign_abandon, name="campaign_abandon"),
    path("campaigns/<slug:slug>/discussion/", views.comment_list, name="comment_list"),
    path("campaigns/<slug:slug>/comments/<int:comment_id>/report/", views.comment_report_view, name="comment_report"),
    path("campaigns/<slug:slug>/comments/<int:comment_id>/hide/", views.comment_hide_view, name="comment_hide"),
]
