"""The desk Mini App: the admin desk in a page Telegram opens, served by the bot's own web
server under /desk/ when WEBAPP_URL is set (`server.add_desk_routes`). Who the user is comes
from Telegram's signed init data (`auth`); every call is checked and audited as the card's
buttons are (`bot.domain.staff.StaffDirectory.check`)."""
